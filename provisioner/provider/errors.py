"""Failures reported to Terraform as diagnostics."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Diagnostic:
    """One Terraform diagnostic: what went wrong, what to do, and where."""

    summary: str
    detail: str = ""
    path: tuple[str | int, ...] = ()
    warning: bool = False

    def to_proto(self, pb) -> object:
        """Encode as a tfplugin6 Diagnostic message."""
        sev = pb.Diagnostic.WARNING if self.warning else pb.Diagnostic.ERROR
        kw = dict(severity=sev, summary=self.summary, detail=self.detail)
        if self.path:
            steps = [pb.AttributePath.Step(attribute_name=s) if isinstance(s, str)
                     else pb.AttributePath.Step(element_key_int=s) for s in self.path]
            kw["attribute"] = pb.AttributePath(steps=steps)
        return pb.Diagnostic(**kw)


@dataclass
class ProviderError(Exception):
    """An expected failure, carried to Terraform as error diagnostics."""

    summary: str
    detail: str = ""
    path: tuple[str | int, ...] = ()
    extra: list[Diagnostic] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.summary}: {self.detail}" if self.detail else self.summary

    def diagnostics(self) -> list[Diagnostic]:
        """All diagnostics this error stands for."""
        return [Diagnostic(self.summary, self.detail, self.path), *self.extra]


def libvirt_failure(action: str, exc: Exception, hint: str = "") -> ProviderError:
    """Wrap a libvirtError into an actionable diagnostic."""
    detail = f"libvirt said: {exc}"
    if hint:
        detail += f"\n\n{hint}"
    return ProviderError(f"Failed to {action}", detail)
