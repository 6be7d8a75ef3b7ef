"""Pure parts of post-boot: cloud-init status parsing, settings, addresses."""

from __future__ import annotations

import json

import pytest

from provisioner.errors import InputError, ProvisionError
from provisioner.postboot.address import Address, parse_address
from provisioner.postboot.cloudinit_status import parse_cloud_init
from provisioner.postboot.guest_script import RESULT_MARKER
from provisioner.postboot.settings import PostbootSettings

RESULT_22 = json.dumps({"v1": {"datasource": "DataSourceNoCloud", "errors": [
    "('locale', ProcessExecutionError(\"Unexpected error while running command.\\nCommand: ['locale-gen', 'x']\"))",
]}})


def test_cloud_init_done() -> None:
    status = parse_cloud_init("status: done\nboot_status_code: enabled-by-generator\ndetail:\nDataSourceNoCloud\n"
                              "\nprovisioner-status=0\n")
    assert status.state == "done" and status.failed_modules == ()


def test_finished_cloud_init_is_judged_by_result_json() -> None:
    done = parse_cloud_init(f"{RESULT_MARKER}\n" + json.dumps({"v1": {"errors": []}}))
    assert done.state == "done"
    failed = parse_cloud_init(f"{RESULT_MARKER}\n{RESULT_22}")
    assert failed.state == "error" and failed.failed_modules == ("locale",)
    assert "cloud-init reported an error in: locale" in failed.describe()


@pytest.mark.parametrize("text", ['{"v1": {"err', "[]", '{"v1": {}}'])
def test_result_json_being_written_is_waited_for(text: str) -> None:
    assert parse_cloud_init(f"{RESULT_MARKER}\n{text}").state == "running"


def test_cloud_init_22_error_names_modules_from_long_output() -> None:
    status = parse_cloud_init("status: error\ndetail:\n('locale', ProcessExecutionError(...))\n"
                              "\nprovisioner-status=1\n")
    assert status.state == "error"
    assert status.failed_modules == ("locale",)


def test_cloud_init_23_error_from_long_output() -> None:
    output = ("status: error\nextended_status: error - done\nboot_status_code: enabled-by-generator\n"
              "detail:\nDataSourceNoCloud [seed=/dev/vdb]\nerrors:\n"
              "\t- Running module package_update_upgrade_install (<module 'cloudinit.config.cc_package'>) failed\n"
              "\t- Running module locale (<module 'cloudinit.config.cc_locale'>) failed\n"
              "recoverable_errors: {}\n\nprovisioner-status=1\n")
    status = parse_cloud_init(output)
    assert status.state == "error"
    assert status.failed_modules == ("package_update_upgrade_install", "locale")


@pytest.mark.parametrize("raw, state", [
    ("running", "running"), ("not run", "running"), ("done", "done"), ("degraded done", "done"),
    ("disabled", "disabled"), ("something new", "unknown"),
])
def test_cloud_init_states(raw: str, state: str) -> None:
    assert parse_cloud_init(f"status: {raw}\n\nprovisioner-status=0\n").state == state


def test_cloud_init_missing() -> None:
    status = parse_cloud_init("\nprovisioner-status=127\n")
    assert status.state == "missing" and "not installed" in status.describe()


def test_settings_from_env() -> None:
    settings = PostbootSettings.from_env({"PROVISION_POSTBOOT_SSH_TIMEOUT": "30",
                                          "PROVISION_POSTBOOT_MAX_ATTEMPTS": "5", "OTHER": "x"})
    assert settings.ssh_timeout == 30.0 and settings.max_attempts == 5
    assert settings.make_timeout == PostbootSettings().make_timeout
    with pytest.raises(ProvisionError, match="PROVISION_POSTBOOT_POLL_MAX='soon'"):
        PostbootSettings.from_env({"PROVISION_POSTBOOT_POLL_MAX": "soon"})
    with pytest.raises(ProvisionError, match="greater than 0"):
        PostbootSettings.from_env({"PROVISION_POSTBOOT_MAKE_TIMEOUT": "-1"})


@pytest.mark.parametrize("text, expected", [
    ("192.0.2.10", Address("192.0.2.10", 22)),
    ("127.0.0.1:2222", Address("127.0.0.1", 2222)),
    ("[::1]:2200", Address("::1", 2200)),
    ("::1", Address("::1", 22)),
    ("guest.example.test:22", Address("guest.example.test", 22)),
])
def test_parse_address(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["host:0", "host:99999", "-oProxyCommand=x", "a b", "$(reboot)", "[::1", "h:p"])
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(InputError, match="ssh address"):
        parse_address(text)
