//! Pushing blobs to a registry (distribution API, plain HTTP) for tests and benchmarks that build
//! images themselves: a monolithic upload, `POST` for a session then `PUT` with the digest.
#![allow(dead_code)]

use std::io::Read;

/// Uploads `body` (its digest given) to `host`'s repository `repo`.
pub fn upload(agent: &ureq::Agent, host: &str, repo: &str, digest: &str, body: &mut dyn Read) {
    let resp = agent
        .post(&format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .send_empty()
        .unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    let url = if location.starts_with("http") {
        location
    } else {
        format!("http://{host}{location}")
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    agent
        .put(&format!("{url}{sep}digest={digest}"))
        .header("Content-Type", "application/octet-stream")
        .send(ureq::SendBody::from_reader(body))
        .unwrap();
}
