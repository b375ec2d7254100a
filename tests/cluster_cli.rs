//! `quiver cluster certs` through the real binary: the files it writes, their modes, and its
//! refusal to overwrite without `--force`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{quiver, stderr_of, stdout_of};

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn certs_are_written_once_with_private_keys() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let tls = dir.path().join("tls");
    let out = quiver(&["cluster", "certs", "--dir", path(&tls)]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stdout_of(&out).contains("127.0.0.1,localhost"),
        "{}",
        stdout_of(&out)
    );
    let mode = |name: &str| {
        std::fs::metadata(tls.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("ca-key.pem"), 0o600);
    assert_eq!(mode("broker-key.pem"), 0o600);
    let broker_pem = std::fs::read_to_string(tls.join("broker.pem")).expect("broker.pem");
    assert_eq!(
        broker_pem.matches("BEGIN CERTIFICATE").count(),
        2,
        "the broker certificate, then the CA's"
    );
    let ca_pem = std::fs::read_to_string(tls.join("ca.pem")).expect("ca.pem");
    assert!(broker_pem.ends_with(&ca_pem), "broker.pem ends with the CA");

    // A second run refuses, naming the files, and changes nothing.
    let again = quiver(&["cluster", "certs", "--dir", path(&tls)]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr_of(&again).contains("--force"),
        "{}",
        stderr_of(&again)
    );
    assert!(
        stderr_of(&again).contains("ca.pem"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(
        std::fs::read_to_string(tls.join("ca.pem")).expect("ca.pem"),
        ca_pem
    );
    // Even one existing file is enough to refuse.
    let partial = dir.path().join("partial");
    std::fs::create_dir(&partial).expect("mkdir");
    std::fs::write(partial.join("broker-key.pem"), "mine").expect("write");
    let refused = quiver(&["cluster", "certs", "--dir", path(&partial)]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr_of(&refused).contains("broker-key.pem"));
    assert!(!partial.join("ca.pem").exists(), "nothing written");

    // --force replaces them all with a new CA.
    let forced = quiver(&["cluster", "certs", "--dir", path(&tls), "--force"]);
    assert!(forced.status.success(), "{}", stderr_of(&forced));
    assert_ne!(
        std::fs::read_to_string(tls.join("ca.pem")).expect("ca.pem"),
        ca_pem
    );
    assert_eq!(mode("broker-key.pem"), 0o600);

    let empty = quiver(&[
        "cluster",
        "certs",
        "--dir",
        path(&dir.path().join("x")),
        "--hosts",
        " , ",
    ]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(
        stderr_of(&empty).contains("--hosts"),
        "{}",
        stderr_of(&empty)
    );
}
