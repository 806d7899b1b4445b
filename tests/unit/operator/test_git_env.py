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
