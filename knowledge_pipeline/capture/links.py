"""Links as capture sees them: validation, canonical form and the dedup hash."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..models import sha256_text

_TRACKING_EXACT = {
    "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "mkt_tok",
    "_bhlid",
}
_DEFAULT_PORTS = {"http": 80, "https": 443}


class LinkError(ValueError):
    """A link capture will not store; the message is the one-line reason.

    ``kind`` is the reason without the link itself, for counting rejections per reason.
    """

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or message


def canonical_link(url: str) -> str:
    """``url`` normalised for dedup: lowercase scheme and host, no default port,
    no fragment, no tracking parameters (``utm_*``, ``fbclid``...).

    Raises LinkError unless it is an http(s) URL with a host.
    """
    text = url.strip()
    if not text:
        raise LinkError("empty link")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise LinkError(f"malformed link {text[:200]!r} ({exc})", "malformed link") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "none"
        raise LinkError(f"unsupported link scheme {shown} (only http and https)", f"unsupported link scheme {shown}")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise LinkError(f"link without a host: {text[:200]!r}", "link without a host")
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)]
    return urlunsplit((scheme, netloc, parts.path or "/", urlencode(query), ""))


def link_hash(url: str) -> str:
    """The dedup hash of a link: sha256 of its canonical form."""
    return sha256_text(canonical_link(url))


def title_from_link(url: str) -> str:
    """A readable stand-in title: host and path, e.g. ``example.com/posts/ai-chips``."""
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return ((parts.hostname or "") + path)[:200] or url[:200]


def _is_tracking(key: str) -> bool:
    lowered = key.lower()
    return lowered.startswith("utm_") or lowered in _TRACKING_EXACT
