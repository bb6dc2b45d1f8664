lab = [
    (
        "10.250.0.10",
        {
            "ssh_user": "root",
            "ssh_key": "/var/lib/foobar/lab/id_ed25519",
            "ssh_known_hosts_file": "/var/lib/foobar/lab/known_hosts",
            "ssh_strict_host_key_checking": "yes",
        },
    )
]
