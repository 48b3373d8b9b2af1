//! Shell completions and man pages, generated from the CLI's definition without a plan.

use std::process::Command;

use crate::util::{Run, Sandbox};

fn lifeboat(sb: &Sandbox, args: &[&str]) -> Run {
    // In a directory with no plan: these commands must not need one.
    let out = Command::new(env!("CARGO_BIN_EXE_lifeboat"))
        .args(args)
        .current_dir(sb.path())
        .output()
        .expect("run lifeboat");
    Run::from(out)
}

#[test]
fn bash_completion_completes_commands_and_options() {
    let sb = Sandbox::new();
    let script = sb.join("lifeboat.bash");
    let run = lifeboat(&sb, &["completions", "bash"]).expect_code(0);
    std::fs::write(&script, &run.stdout).unwrap();
    // Loaded into a real bash and called as bash calls it (command, current word, previous
    // word): what do `lifeboat res<TAB>` and `lifeboat restore --be<TAB>` complete to?
    let ask = |words: &str, cword: u32| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE=\"{words}\"; COMP_POINT=${{#COMP_LINE}}; _lifeboat lifeboat \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ))
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let commands = ask("lifeboat res", 1);
    assert_eq!(
        commands.split_whitespace().collect::<Vec<_>>(),
        ["restore"],
        "{commands}"
    );
    let options = ask("lifeboat restore --be", 2);
    assert!(
        options.split_whitespace().any(|o| o == "--before"),
        "{options}"
    );
}

#[test]
fn man_pages_cover_every_command() {
    let sb = Sandbox::new();
    let dir = sb.join("man");
    lifeboat(&sb, &["man", "--out", dir.to_str().unwrap()]).expect_code(0);
    let main = std::fs::read_to_string(dir.join("lifeboat.1")).expect("lifeboat.1");
    assert!(main.contains(".TH lifeboat 1"), "{main}");
    assert!(
        main.contains("restore"),
        "the main page lists the commands: {main}"
    );
    let restore =
        std::fs::read_to_string(dir.join("lifeboat-restore.1")).expect("lifeboat-restore.1");
    assert!(restore.contains(".TH lifeboat-restore 1"), "{restore}");
    // roff writes option dashes escaped.
    assert!(restore.contains(r"\-\-before"), "{restore}");
    assert!(
        restore.contains("Restore an asset from a snapshot"),
        "{restore}"
    );
    for command in ["backup", "drill", "verify", "recover", "kit", "daemon"] {
        assert!(
            dir.join(format!("lifeboat-{command}.1")).exists(),
            "no page for {command}"
        );
    }
    let stdout = lifeboat(&sb, &["man"]).expect_code(0);
    assert!(
        stdout.stdout.contains(".TH lifeboat 1"),
        "{}",
        stdout.stdout
    );
}
