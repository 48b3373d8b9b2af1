//! A runbook's `http` steps as the seeds' smoke tests need them: a method, headers, a request
//! body, and a bearer token read from a secret source that never shows anywhere.

use std::fs;

use lifeboat_testing::Receiver;

use crate::util::{Sandbox, toml_path};

const TOKEN: &str = "tok-3f9a77c1-very-secret";

/// A plan whose scenario POSTs to `receiver` with a bearer token from `token-file`.
fn plan(sb: &Sandbox, receiver: &Receiver) {
    let token = sb.join("token");
    fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let data = sb.join("data.txt");
    fs::write(&data, "x").unwrap();
    sb.write_plan(&format!(
        "[assets.data]\ntype = \"files\"\npaths = [{}]\n\n[[scenarios]]\nname = \"smoke\"\nsteps = [\n  {{ http = \"{}\", method = \"POST\", headers = {{ X-Probe = \"lifeboat\", Content-Type = \"application/json\" }}, bearer-file = {}, data = '{{\"order\": 1}}', expect = 200 }},\n]\n",
        toml_path(&data),
        receiver.url("/api/orders"),
        toml_path(&token),
    ));
}

#[test]
fn http_step_sends_method_headers_body_and_bearer_token() {
    let receiver = Receiver::start();
    let sb = Sandbox::new();
    plan(&sb, &receiver);
    let report = sb.join("incident.md");
    let run = sb.run(&[
        "-vv",
        "recover",
        "smoke",
        "--yes",
        "--report",
        report.to_str().unwrap(),
    ]);
    let run = run.expect_code(0);
    let got = receiver.requests("/api/orders");
    assert_eq!(got.len(), 1, "{got:#?}");
    let r = &got[0];
    assert_eq!(r.method, "POST");
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-probe"), Some("lifeboat"));
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(
        header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(r.body, br#"{"order": 1}"#);
    let text = fs::read_to_string(&report).unwrap();
    assert!(text.contains("POST http://127.0.0.1:"), "{text}");
    for (what, out) in [
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
        ("incident report", &text),
    ] {
        assert!(
            !out.contains(TOKEN),
            "the token leaked into the {what}: {out}"
        );
    }
    let show = sb.run_ok(&["plan", "show"]);
    assert!(!show.stdout.contains(TOKEN), "{}", show.stdout);
}

#[test]
fn a_failing_http_step_names_its_method_and_the_answer() {
    let receiver = Receiver::start();
    let sb = Sandbox::new();
    plan(&sb, &receiver);
    receiver.fail_next("/api/orders", 503);
    let run = sb
        .run(&["--json", "recover", "smoke", "--yes"])
        .expect_code(1);
    let report = run.json();
    let detail = report["report"]["steps"][0]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.starts_with("POST http://127.0.0.1:"), "{detail}");
    assert!(detail.contains("answered 503"), "{detail}");
    assert!(!run.stdout.contains(TOKEN) && !run.stderr.contains(TOKEN));
}
