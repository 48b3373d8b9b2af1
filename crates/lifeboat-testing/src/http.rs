//! A minimal HTTP/1.1 client over `std::net::TcpStream`, enough to talk to a
//! local test server: one request per connection (`Connection: close`), bodies
//! framed by `Content-Length`, chunked transfer-encoding or end of stream.
//!
//! Deliberately not a general client: no TLS, no redirects, no keep-alive. It
//! exists so that tests can arrange and inspect server state without going
//! through the code under test.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Generous, because moto's first request after start-up imports lazily.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The body as text, for error messages.
    pub(crate) fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `127.0.0.1:port` and reads the whole response.
///
/// `target` is the request target as sent (path and query, already
/// percent-encoded). `headers` are added after `Host`, `Content-Length` and
/// `Connection: close`. Each read and write may block for up to `timeout`.
pub(crate) fn request(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> Result<Response> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("connect to 127.0.0.1:{port}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush())
        .with_context(|| format!("send {method} {target} to 127.0.0.1:{port}"))?;

    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .with_context(|| format!("read response to {method} {target} from 127.0.0.1:{port}"))?;
    parse_response(&raw, method == "HEAD")
        .with_context(|| format!("parse response to {method} {target} from 127.0.0.1:{port}"))
}

/// Parses a complete HTTP/1.1 response read until the server closed the connection.
pub(crate) fn parse_response(raw: &[u8], head_only: bool) -> Result<Response> {
    let head_end = find(raw, b"\r\n\r\n").context("response ends before the end of its headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).context("response headers are not UTF-8")?;
    let rest = &raw[head_end + 4..];

    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("malformed status line {status_line:?}"))?;

    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            bail!("malformed header line {line:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse::<usize>()
                    .with_context(|| format!("malformed Content-Length {value:?}"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }

    let body = if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if chunked {
        decode_chunked(rest)?
    } else if let Some(len) = content_length {
        if rest.len() < len {
            bail!("body is {} bytes, Content-Length says {len}", rest.len());
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

/// Decodes a chunked body; trailers after the last chunk are ignored.
fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n").context("chunk size line is not terminated")?;
        let size_line =
            std::str::from_utf8(&data[..line_end]).context("chunk size is not UTF-8")?;
        let size_hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_hex, 16)
            .with_context(|| format!("malformed chunk size {size_line:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            bail!("chunk of {size} bytes is cut short");
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Percent-encodes everything but RFC 3986 unreserved characters, and `/` when
/// `keep_slash` (for S3 object keys in a path, where `/` separates nothing but
/// is harmless).
pub(crate) fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let resp = parse_response(raw, false).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, b"hello");
    }

    #[test]
    fn parses_chunked_body_with_extension_and_trailer() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let resp = parse_response(raw, false).unwrap();
        assert_eq!(resp.body, b"hello, world");
    }

    #[test]
    fn reads_body_until_close_without_framing() {
        let raw = b"HTTP/1.0 404 NOT FOUND\r\nServer: x\r\n\r\n<Error/>";
        let resp = parse_response(raw, false).unwrap();
        assert_eq!(resp.status, 404);
        assert_eq!(resp.body_text(), "<Error/>");
    }

    #[test]
    fn rejects_truncated_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
        assert!(parse_response(raw, false).is_err());
    }

    #[test]
    fn percent_encodes_keys() {
        assert_eq!(percent_encode("a b/été", true), "a%20b/%C3%A9t%C3%A9");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
    }
}
