"""The environment git runs with: isolated, proxies passed, credentials only as config values."""

from __future__ import annotations

from mcpreg_operator.sources.git import GitCredentials, git_env


def test_git_sees_proxy_settings_but_not_the_rest_of_the_environment() -> None:
    env = git_env(
        GitCredentials("u", "p"),
        base={
            "PATH": "/bin",
            "HTTPS_PROXY": "http://proxy:3128",
            "no_proxy": ".svc",
            "AWS_SECRET_ACCESS_KEY": "x",
        },
    )
    assert env["HTTPS_PROXY"] == "http://proxy:3128" and env["no_proxy"] == ".svc"
    assert "AWS_SECRET_ACCESS_KEY" not in env
    # The credential travels as a config value in the environment, never as an argument.
    assert any(value.startswith("Authorization: Basic ") for value in env.values())


def config_of(env: dict[str, str]) -> dict[str, str]:
    count = int(env["GIT_CONFIG_COUNT"])
    return {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(count)}


def test_nothing_of_the_repository_runs_and_only_network_transports_are_allowed() -> None:
    config = config_of(git_env(None, base={"PATH": "/bin"}))
    assert config["protocol.allow"] == "never"
    assert config["protocol.file.allow"] == "never" and config["protocol.ext.allow"] == "never"
    assert {k for k, v in config.items() if k.startswith("protocol.") and v == "always"} == {
        "protocol.https.allow",
        "protocol.http.allow",
        "protocol.git.allow",
    }
    assert config["core.hooksPath"] == "/dev/null"
    assert config["submodule.recurse"] == "false" and config["fetch.recurseSubmodules"] == "false"
    assert config["core.fsmonitor"] == "false"


def test_lfs_pointers_are_told_apart_from_catalogues() -> None:
    from mcpreg_operator.sources.git import is_lfs_pointer

    pointer = (
        b"version https://git-lfs.github.com/spec/v1\n"
        b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
        b"size 12345\n"
    )
    assert is_lfs_pointer(pointer)
    assert not is_lfs_pointer(b'{"version": "https://git-lfs.github.com/spec/v1", "servers": {}}')
    assert not is_lfs_pointer(pointer + b" " * 2048)  # a pointer is small; this is something else
