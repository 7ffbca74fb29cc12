//! `/etc/passwd` and `/etc/group` lookups, the way runc resolves an image's `USER`: a name is
//! looked up in passwd (uid and primary gid), a group name in group, and the user's
//! supplementary groups are the group entries that list the user name.

/// One passwd entry: name, uid, gid.
fn passwd_entries(text: &str) -> impl Iterator<Item = (&str, u32, u32)> {
    text.lines().filter_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let uid = f.next()?.trim().parse().ok()?;
        let gid = f.next()?.trim().parse().ok()?;
        (!name.is_empty() && !name.starts_with('#')).then_some((name, uid, gid))
    })
}

/// One group entry: name, gid, members.
fn group_entries(text: &str) -> impl Iterator<Item = (&str, u32, Vec<&str>)> {
    text.lines().filter_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        let gid = f.next()?.trim().parse().ok()?;
        let members = f
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        (!name.is_empty() && !name.starts_with('#')).then_some((name, gid, members))
    })
}

/// The numeric user an image's `USER` resolves to: `(uid, gid, supplementary gids)`. `passwd`
/// and `group` are the files' texts (`None` when the image has no such file). Returns `None`
/// when a name cannot be resolved; the kubelet's `runAsNonRoot` check then refuses the image.
pub fn resolve(
    user: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Option<(u32, Option<u32>, Vec<u32>)> {
    let (name, group_part) = super::split_user(user);
    let (uid, primary, user_name) = if name.is_empty() {
        (0, Some(0), Some("root"))
    } else if let Ok(uid) = name.parse::<u32>() {
        let entry = passwd.and_then(|p| passwd_entries(p).find(|e| e.1 == uid));
        (uid, entry.map(|e| e.2), entry.map(|e| e.0))
    } else {
        let entry = passwd_entries(passwd?).find(|e| e.0 == name)?;
        (entry.1, Some(entry.2), Some(entry.0))
    };
    let gid = match group_part {
        None => primary,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => Some(gid),
            Err(_) => Some(group_entries(group?).find(|e| e.0 == g)?.1),
        },
    };
    let mut supplementary: Vec<u32> = match (user_name, group) {
        (Some(n), Some(text)) => group_entries(text)
            .filter(|e| e.2.contains(&n))
            .map(|e| e.1)
            .collect(),
        _ => Vec::new(),
    };
    supplementary.sort_unstable();
    supplementary.dedup();
    Some((uid, gid, supplementary))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\nmemcache:x:11211:11211::/home/memcache:/sbin/nologin\n";
    const GROUP: &str =
        "root:x:0:\nmemcache:x:11211:\nssl-cert:x:101:memcache,other\nnogroup:x:65534:\n";

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            resolve("memcache", Some(PASSWD), Some(GROUP)),
            Some((11211, Some(11211), vec![101]))
        );
        assert_eq!(
            resolve("nobody:nogroup", Some(PASSWD), Some(GROUP)),
            Some((65534, Some(65534), vec![]))
        );
        assert_eq!(
            resolve("1000", Some(PASSWD), None),
            Some((1000, None, vec![]))
        );
        assert_eq!(
            resolve("1000:2000", None, None),
            Some((1000, Some(2000), vec![]))
        );
        assert_eq!(resolve("", None, None), Some((0, Some(0), vec![])));
        assert_eq!(resolve("ghost", Some(PASSWD), Some(GROUP)), None);
        assert_eq!(resolve("memcache", None, None), None);
        assert_eq!(resolve("memcache:nosuch", Some(PASSWD), Some(GROUP)), None);
    }
}
