"""The tfplugin6 Provider service: Terraform's RPCs onto our resources.

Each RPC decodes its DynamicValues with the resource's schema, calls the
resource, conforms the answer to the schema and encodes it back. Expected
failures (`ProviderError`, libvirt errors) become error diagnostics with an
actionable message; anything else becomes an "internal error" diagnostic
carrying the exception, so Terraform never sees a crashed RPC.
"""

from __future__ import annotations

import functools
import sys
import threading
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc

from . import codec
from .errors import Diagnostic, ProviderError
from .hypervisor import Hypervisor
from .schema import ResourceSchema, conform, fill_unknowns, optional, project, to_proto

PROVIDER_SCHEMA = ResourceSchema("provider", (
    optional("uri", "string", "Libvirt connection URI. Defaults to `qemu:///system` if not specified."),
))


@dataclass
class ProviderState:
    """What ConfigureProvider sets for one provider instance (one Terraform connection)."""

    hv: Hypervisor | None = None

    def close(self) -> None:
        """Close the hypervisor connection, if any."""
        if self.hv is not None:
            self.hv.close()


# Maps an RPC's context to the state of the provider instance it belongs to.
StateLookup = Callable[[Any], ProviderState]


class InFlight:
    """Counts RPCs being served, so shutdown can wait for them to finish."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def __enter__(self) -> None:
        with self._cond:
            self._count += 1

    def __exit__(self, *exc: Any) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no RPC is running (or timeout); True when idle."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)


def _diagnostics(exc: BaseException) -> list[Any]:
    if isinstance(exc, ProviderError):
        return [d.to_proto(pb) for d in exc.diagnostics()]
    if type(exc).__name__ == "libvirtError":
        return [Diagnostic("libvirt error", str(exc)).to_proto(pb)]
    detail = "".join(traceback.format_exception(exc))
    print(detail, file=sys.stderr)  # lands in TF_LOG=debug output
    return [Diagnostic("Internal error in the libvirt provider",
                       f"{type(exc).__name__}: {exc}\n\nThis is a bug; the traceback is in the "
                       "Terraform debug log (TF_LOG=debug).").to_proto(pb)]


def rpc_method(response: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap an RPC: count it in flight, turn exceptions into diagnostics."""
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(self: "ProviderServicer", request: Any, context: Any) -> Any:
            with self.inflight:
                try:
                    return fn(self, request, context)
                except Exception as exc:  # noqa: BLE001 - reported to Terraform, never swallowed
                    return response(diagnostics=_diagnostics(exc))
        return wrapper
    return decorate


class ProviderServicer(rpc.ProviderServicer):
    """Implements every tfplugin6 RPC Terraform 1.x calls for managed resources.

    Started by Terraform, the process serves one Terraform instance and holds
    one configuration. The warm provider (warm.py) serves many connections at
    once and passes `state_for`, which keys each RPC's configuration by its
    connection, so one apply's `uri` never leaks into another's.
    """

    def __init__(self, state_for: StateLookup | None = None) -> None:
        from .resources import all_resources

        self.resources = all_resources()
        single = ProviderState()
        self._state_for: StateLookup = state_for or (lambda _context: single)
        self.inflight = InFlight()

    # -- helpers -----------------------------------------------------------------
    def _resource(self, type_name: str):
        try:
            return self.resources[type_name]
        except KeyError:
            raise ProviderError(f"Unsupported resource type {type_name!r}",
                                "This embedded provider implements: " + ", ".join(sorted(self.resources))
                                + ". Switch to the upstream provider for the others.") from None

    def _hypervisor(self, context: Any) -> Hypervisor:
        state = self._state_for(context)
        if state.hv is None:
            # Import and plan can run before ConfigureProvider in some flows.
            state.hv = Hypervisor(None)
        return state.hv

    @staticmethod
    def _caps() -> Any:
        return pb.ServerCapabilities(plan_destroy=False, get_provider_schema_optional=True)

    # -- metadata and schema -------------------------------------------------------
    @rpc_method(pb.GetMetadata.Response)
    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            server_capabilities=self._caps(),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in self.resources])

    @rpc_method(pb.GetProviderSchema.Response)
    def GetProviderSchema(self, request, context):
        return pb.GetProviderSchema.Response(
            provider=to_proto(PROVIDER_SCHEMA.attrs, pb),
            resource_schemas={n: to_proto(r.schema.attrs, pb, r.schema.version, r.schema.description)
                              for n, r in self.resources.items()},
            server_capabilities=self._caps())

    @rpc_method(pb.ValidateProviderConfig.Response)
    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    @rpc_method(pb.ConfigureProvider.Response)
    def ConfigureProvider(self, request, context):
        config = codec.decode(request.config, PROVIDER_SCHEMA.attrs) or {}
        uri = config.get("uri")
        if uri is not None and not isinstance(uri, str):
            raise ProviderError("The provider `uri` must be known before apply",
                                "Use a literal or a variable for `uri`, not a resource attribute.", ("uri",))
        state = self._state_for(context)
        state.close()
        state.hv = Hypervisor(uri)
        return pb.ConfigureProvider.Response()

    @rpc_method(pb.ValidateResourceConfig.Response)
    def ValidateResourceConfig(self, request, context):
        res = self._resource(request.type_name)
        config = codec.decode(request.config, res.schema.attrs) or {}
        return pb.ValidateResourceConfig.Response(diagnostics=[d.to_proto(pb) for d in res.validate(config)])

    @rpc_method(pb.ValidateDataResourceConfig.Response)
    def ValidateDataResourceConfig(self, request, context):
        raise _no_data_source(request.type_name)

    @rpc_method(pb.UpgradeResourceState.Response)
    def UpgradeResourceState(self, request, context):
        res = self._resource(request.type_name)
        state = codec.decode_raw_state(request.raw_state.json, res.schema.attrs)
        return pb.UpgradeResourceState.Response(upgraded_state=codec.encode(state, res.schema.attrs, pb))

    # -- the resource lifecycle ------------------------------------------------------
    @rpc_method(pb.ReadResource.Response)
    def ReadResource(self, request, context):
        res = self._resource(request.type_name)
        attrs = res.schema.attrs
        prior = codec.decode(request.current_state, attrs)
        if prior is None:
            return pb.ReadResource.Response(new_state=codec.encode(None, attrs, pb))
        observed = res.read(self._hypervisor(context), prior)
        new_state = None if observed is None else project(attrs, conform(attrs, observed), prior)
        return pb.ReadResource.Response(new_state=codec.encode(new_state, attrs, pb), private=request.private)

    @rpc_method(pb.PlanResourceChange.Response)
    def PlanResourceChange(self, request, context):
        res = self._resource(request.type_name)
        attrs = res.schema.attrs
        prior = codec.decode(request.prior_state, attrs)
        proposed = codec.decode(request.proposed_new_state, attrs)
        config = codec.decode(request.config, attrs)
        plan = res.plan(prior, proposed, config)
        return pb.PlanResourceChange.Response(
            planned_state=codec.encode(plan.planned, attrs, pb),
            requires_replace=[pb.AttributePath(steps=[pb.AttributePath.Step(attribute_name=s) for s in path])
                              for path in plan.requires_replace],
            planned_private=request.prior_private)

    @rpc_method(pb.ApplyResourceChange.Response)
    def ApplyResourceChange(self, request, context):
        res = self._resource(request.type_name)
        attrs = res.schema.attrs
        prior = codec.decode(request.prior_state, attrs)
        planned = codec.decode(request.planned_state, attrs)
        hv = self._hypervisor(context)
        if planned is None:
            res.delete(hv, prior)
            return pb.ApplyResourceChange.Response(new_state=codec.encode(None, attrs, pb))
        observed = res.create(hv, planned) if prior is None else res.update(hv, prior, planned)
        # Known planned values stand (Terraform insists); libvirt fills the unknowns.
        new_state = fill_unknowns(planned, conform(attrs, observed))
        return pb.ApplyResourceChange.Response(new_state=codec.encode(new_state, attrs, pb),
                                               private=request.planned_private)

    @rpc_method(pb.ImportResourceState.Response)
    def ImportResourceState(self, request, context):
        res = self._resource(request.type_name)
        state = res.import_state(self._hypervisor(context), request.id)
        return pb.ImportResourceState.Response(imported_resources=[pb.ImportResourceState.ImportedResource(
            type_name=request.type_name, state=codec.encode(state, res.schema.attrs, pb))])

    @rpc_method(pb.ReadDataSource.Response)
    def ReadDataSource(self, request, context):
        raise _no_data_source(request.type_name)

    @rpc_method(pb.GetFunctions.Response)
    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()

    def StopProvider(self, request, context):
        # Terraform asks to cancel in-flight work (Ctrl-C). libvirt calls
        # cannot be interrupted safely; they finish and Terraform records them.
        return pb.StopProvider.Response()


def _no_data_source(type_name: str) -> ProviderError:
    return ProviderError(f"Unsupported data source {type_name!r}",
                         "This embedded provider implements no data sources.")
