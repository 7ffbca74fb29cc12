//! A tiny HTTP/1.1 server for tests and benchmarks: a thread per connection, keep-alive,
//! GET/HEAD only, a handler closure that answers each request.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the handler sees.
#[derive(Debug, Clone)]
pub struct Req {
    /// `GET`, `HEAD`.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
}

impl Req {
    /// The first header with this (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter, percent-decoded.
    pub fn query(&self, key: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == key).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the handler answers. For HEAD, `body` still sets `Content-Length` but is not sent.
#[derive(Debug, Clone, Default)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Resp {
    /// A response with no body.
    pub fn status(status: u16) -> Resp {
        Resp {
            status,
            ..Resp::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// A running server; stops (and joins its accept thread) on drop.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// `127.0.0.1:port`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.addr.port())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

/// Starts a server on a free 127.0.0.1 port.
pub fn serve<F>(handler: F) -> Server
where
    F: Fn(&Req) -> Resp + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handler = Arc::new(handler);
    let stop2 = stop.clone();
    let accept = std::thread::spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            let Ok(conn) = conn else { continue };
            let handler = handler.clone();
            let stop3 = stop2.clone();
            std::thread::spawn(move || {
                let _ = handle(conn, &*handler, &stop3);
            });
        }
    });
    Server {
        addr,
        stop,
        accept: Some(accept),
    }
}

fn handle<F>(conn: TcpStream, handler: &F, stop: &AtomicBool) -> std::io::Result<()>
where
    F: Fn(&Req) -> Resp,
{
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || stop.load(Ordering::SeqCst) {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        let mut content_length = 0usize;
        loop {
            let mut h = String::new();
            reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                let k = k.trim().to_ascii_lowercase();
                if k == "content-length" {
                    content_length = v.trim().parse().unwrap_or(0);
                }
                headers.push((k, v.trim().to_string()));
            }
        }
        if content_length > 0 {
            let mut sink = vec![0; content_length];
            reader.read_exact(&mut sink)?;
        }
        let req = Req {
            method,
            target,
            headers,
        };
        let resp = handler(&req);
        let mut out = format!("HTTP/1.1 {} X\r\n", resp.status);
        let mut has_length = false;
        for (k, v) in &resp.headers {
            if k.eq_ignore_ascii_case("content-length") {
                has_length = true;
            }
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_length {
            out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        }
        out.push_str("\r\n");
        writer.write_all(out.as_bytes())?;
        if req.method != "HEAD" {
            writer.write_all(&resp.body)?;
        }
        writer.flush()?;
    }
}

/// A server that accepts connections and never answers (for timeout tests).
pub fn black_hole() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let accept = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            if stop2.load(Ordering::SeqCst) {
                break;
            }
            if let Ok(c) = conn {
                held.push(c);
            }
        }
    });
    Server {
        addr,
        stop,
        accept: Some(accept),
    }
}
