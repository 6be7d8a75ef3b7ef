"""The WSGI app: every service mounted on one falcon.App, over one root."""

from __future__ import annotations

from dataclasses import dataclass

import falcon

from api import errors
from api.auth import AuthMiddleware
from api.compute import routes as compute_routes
from api.compute.attachments import Attachments
from api.compute.block_devices import BlockDevices
from api.compute.builder import ServerBuilder
from api.compute.models import ComputeStore
from api.compute.placement import Hosts
from api.compute.tasks import ServerTasks
from api.config import config_path, load_config
from api.context import ApiContext
from api.db import Database
from api.engine import Engine
from api.identity import routes as identity_routes
from api.identity.tokens import TokenSigner, load_key
from api.image import routes as image_routes
from api.image.catalog import ImageCatalog
from api.jobs.runner import JobRunner
from api.network import routes as network_routes
from api.network.store import NetworkStore
from api.request_id import RequestIdMiddleware
from api.validation import ValidationMiddleware, spec_schemas
from api.volume import routes as volume_routes
from api.volume.placement import VolumePlacement
from api.volume.store import VolumeStore
from api.volume.worker import VolumeWorker
from api.web import routes as web_routes
from provisioner.layout import Layout
from provisioner.terraform.backend import root_id


@dataclass(frozen=True)
class Api:
    """The app and what must be stopped with it (the job runner)."""

    app: falcon.App
    context: ApiContext
    tasks: JobRunner

    def close(self) -> None:
        """Release the app's database connections, once its server and its job runner have stopped."""
        self.context.db.close()


def create_api(layout: Layout, engine: Engine | None = None) -> Api:
    """Build the app from `<root>/api/config.yaml` and the token key next to it."""
    config = load_config(config_path(layout))
    signer = TokenSigner(load_key(layout.root / "api" / "token.key"), config.token_ttl)
    db = Database(layout.state_db, config.database)
    db.check(str(config_path(layout)))  # an unreachable database stops the start with one line, not a traceback
    hosts = Hosts(config.hypervisors, layout)
    hosts.prepare()
    uri = hosts.hosts[0].uri  # the engine's default hypervisor; volumes and networks name their own
    ctx = ApiContext(layout, config, signer, db,
                     engine or Engine(layout, database=config.database, libvirt_uri=uri))

    tokens = identity_routes.token_verifier(ctx)
    app = falcon.App(middleware=[RequestIdMiddleware(), AuthMiddleware(tokens),
                                  ValidationMiddleware(spec_schemas(), config.max_json_body)])
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    if db.unavailable:
        app.add_error_handler(db.unavailable, errors.handle_database_unavailable)

    images = ImageCatalog(layout, ctx.db)
    networks = NetworkStore(ctx.db, config.default_network)
    compute = ComputeStore(ctx.db)
    runner = JobRunner(ctx.db, config.build_workers, root_id(layout.terraform))
    tasks = ServerTasks(compute, ctx.engine, runner, config.stop_timeout, hosts.uri_of)
    tasks.before_build.append(hosts.check_spec)
    builder = ServerBuilder(config, layout, images, networks,
                            lambda user_id, name: compute.keypairs.get(f"{user_id}/{name}"), hosts,
                            compute.servers.list)

    volumes = VolumeStore(ctx.db)
    placement = VolumePlacement(hosts, volumes.volumes.list, volumes.snapshots.list, compute.servers.list,
                                lambda: builder.flavor_source())
    worker = VolumeWorker(volumes, ctx.engine, runner, placement)
    block_devices = BlockDevices(compute, volumes, worker, images, tasks)
    identity_routes.add_routes(app, ctx, tokens)
    compute_routes.add_routes(app, ctx, compute, networks, volumes, builder, tasks, hosts, block_devices)
    image_routes.add_routes(app, ctx, images)
    cinder = volume_routes.add_routes(app, ctx, volumes, worker)
    block_devices.cinder, block_devices.snapshots = cinder
    compute_routes.add_volume_routes(app, ctx, volumes, worker, cinder)
    attachments = Attachments(compute, volumes, ctx.engine, tasks, placement)
    compute_routes.add_attachment_routes(app, ctx, compute, attachments)
    network_routes.add_routes(app, ctx, networks, compute, hosts, tasks)
    web_routes.add_routes(app, ctx, tokens, compute, images, networks, volumes)
    return Api(app, ctx, runner)
