"""Load a domain's input directory (provision.conf, users.yaml, data.tar.gz)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from provisioner.errors import InputError
from provisioner.images.store import ImageStore
from provisioner.kvm import kvm_runs_guests
from provisioner.layout import Layout, is_simulated
from provisioner.postboot.address import parse_address
from provisioner.spec.archive import check_archive
from provisioner.spec.conf import read_conf
from provisioner.spec.image import image_dirs, local_file, resolve_image
from provisioner.spec.model import Address, DomainSpec, ExtraDisk, Nic
from provisioner.spec.names import validate_domain_name
from provisioner.spec.passwords import hash_plain_passwords, previous_hashes
from provisioner.spec.users import read_users
from provisioner.template_sources import check_override_dir

SIMULATOR = "simulator"


def mac_for(name: str, index: int = 0) -> str:
    """A stable locally-administered MAC (QEMU's 52:54:00 prefix) for a domain's NIC."""
    digest = hashlib.sha256(f"{name}/nic{index}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def auto_domain_type(uri: str, layout: Layout) -> str:
    """kvm where it really works, else qemu (TCG); a remote host is assumed to have KVM."""
    if uri == layout.simulator_uri or is_simulated(uri):  # nothing runs on a simulated one (any node file)
        return "qemu"
    if "://" in uri and uri.split("://", 1)[1].startswith("/"):
        return "kvm" if kvm_runs_guests() else "qemu"
    return "kvm"


# libvirt runs a local program for these transports or URI parameters, or reads a local file they name:
# a domain directory may not choose them (--libvirt-uri / PROVISION_LIBVIRT_URI, the operator's, may).
_HOST_TRANSPORTS = frozenset({"ext"})
_HOST_PARAMETERS = frozenset({"command", "keyfile", "known_hosts", "pkipath", "socket", "netcat"})


def check_domain_uri(uri: str, where: str) -> None:
    """InputError if a domain's own `libvirt_uri` would make libvirt run or read something on this host."""
    if uri == SIMULATOR:
        return
    parts = urlsplit(uri)
    scheme, _, transport = parts.scheme.lower().partition("+")
    params = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    if not scheme or scheme == "test" or transport in _HOST_TRANSPORTS or params & _HOST_PARAMETERS:
        raise InputError(where, "key 'libvirt_uri': a libvirt URI (scheme+transport://host/path) without the test "
                                f"driver, the ext transport or the parameters {', '.join(sorted(_HOST_PARAMETERS))} "
                                "(they run or read something on this host; the operator may pass them with "
                                "--libvirt-uri)")


def load_domain(name: str, domains_dir: Path, layout: Layout, libvirt_uri: str | None = None) -> DomainSpec:
    """Read and validate `<domains_dir>/<name>/`; nothing is written.

    `libvirt_uri` (from --libvirt-uri or PROVISION_LIBVIRT_URI) overrides the
    domain's own setting. Every file read must resolve inside the domain
    directory (image, kernel and initrd: or inside PROVISION_IMAGE_DIRS).
    """
    validate_domain_name(name)
    directory = domains_dir / name
    if not directory.is_dir():
        raise InputError(str(directory), "domain directory not found (use --domains DIR or PROVISION_DOMAINS)")
    conf_path = directory / "provision.conf"
    where = str(conf_path)
    conf = read_conf(conf_path)
    users = read_users(directory / "users.yaml")

    archive = directory / "data.tar.gz"
    if archive.exists() or archive.is_symlink():
        check_archive(archive, directory)
    else:
        archive = None
    check_override_dir(directory)
    allowed = image_dirs()

    depends_on = conf["depends_on"]
    if depends_on is not None:
        validate_domain_name(depends_on, f"{where}: key 'depends_on'")
        if depends_on == name:
            raise InputError(where, "key 'depends_on': a domain cannot depend on itself")
        if not (domains_dir / depends_on).is_dir():
            raise InputError(where, f"key 'depends_on': no domain directory {str(domains_dir / depends_on)!r}")

    boot_files = {}
    for key in ("kernel", "initrd"):
        if conf[key]:
            boot_files[key] = str(local_file(conf[key], key, directory, where, allowed))
    if conf["cmdline"] and not conf["kernel"]:
        raise InputError(where, "key 'cmdline' needs 'kernel'")

    if conf["ssh_address"]:
        parse_address(conf["ssh_address"], f"{where}: key 'ssh_address'")

    if libvirt_uri is None:
        check_domain_uri(conf["libvirt_uri"], where)
    uri = libvirt_uri or conf["libvirt_uri"]
    if uri == SIMULATOR:
        uri = layout.simulator_uri
    domain_type = conf["domain_type"]
    if domain_type == "auto":
        domain_type = auto_domain_type(uri, layout)
    cpu_mode = conf["cpu_mode"]
    if cpu_mode == "auto":
        cpu_mode = "host-passthrough" if domain_type == "kvm" else "maximum"

    nic = Nic(
        mac=mac_for(name),
        bridge=None if conf["network"] else conf["bridge"],
        network=conf["network"],
        model=conf["nic_model"],
        addresses=tuple(Address(ip, prefix) for ip, prefix in conf["ips"]),
        gateway=conf["gateway"],
        resolvers=tuple(conf["resolvers"]),
    )
    return DomainSpec(
        name=name,
        image=resolve_image(conf["image"], conf["image_format"], directory, where, ImageStore(layout),
                            conf["image_digests"], allowed),
        image_digests=tuple(sorted(conf["image_digests"].items())),
        size=conf["size"],
        memory=conf["memory"],
        cpus=conf["cpus"],
        cpu_mode=cpu_mode,
        domain_type=domain_type,
        libvirt_uri=uri,
        nics=(nic,),
        users=hash_plain_passwords(users, previous_hashes(layout.domain_dir(name) / "spec.json")),
        admin_user=conf["admin_user"],
        packages=tuple(conf["packages"]),
        install_packages=conf["install_packages"],
        contact_email=conf["contact_email"],
        depends_on=depends_on,
        extra_disks=tuple(ExtraDisk(size) for size in conf["disks"]),
        autostart=conf["autostart"],
        graphics=conf["graphics"],
        machine=conf["machine"],
        arch=conf["arch"],
        kernel=boot_files.get("kernel"),
        initrd=boot_files.get("initrd"),
        cmdline=conf["cmdline"],
        locale=conf["locale"],
        ssh_address=conf["ssh_address"],
        data_archive=archive,
        input_dir=directory,
    )
