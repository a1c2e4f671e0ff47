"""HTTP request with the standard library (urllib), in a worker thread. The response goes to
payload.data.response. SIMULATE sends nothing and describes the request instead."""

import json
import urllib.error
import urllib.request
from urllib.parse import urljoin, urlsplit

from engine.components.api import ModuleError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_RESPONSE_BYTES = 16 * 1024 * 1024



class _WebRedirectsOnly(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to http:// or https:// (urllib would follow ftp:// too)."""

    def http_error_302(self, req, fp, code, msg, headers):
        target = headers.get("Location") or headers.get("URI") or ""
        scheme = urlsplit(urljoin(req.full_url, target)).scheme.lower()
        if scheme not in ("http", "https"):
            fp.close()
            raise ModuleError(f"{req.get_method()} {req.full_url} answered {code} with a redirect "
                              f"to {scheme or 'no'}:// ({target[:200]}); only http:// and "
                              f"https:// redirects are followed")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


_OPENER = urllib.request.build_opener(_WebRedirectsOnly)


def _headers(raw):
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise ModuleError("'headers' must be an object (or JSON text of one)") from None
    if not isinstance(raw, dict):
        raise ModuleError("'headers' must be an object")
    return {str(k): str(v) for k, v in raw.items()}


def _body(raw, headers):
    if raw in (None, ""):
        return None
    if isinstance(raw, (dict, list)):
        headers.setdefault("Content-Type", "application/json")
        return json.dumps(raw, ensure_ascii=False).encode("utf-8")
    return str(raw).encode("utf-8")


def _decode(raw, content_type):
    charset = "utf-8"
    for part in content_type.split(";"):
        if part.strip().lower().startswith("charset="):
            charset = part.split("=", 1)[1].strip() or "utf-8"
    try:
        text = raw.decode(charset, errors="replace")
    except LookupError:
        text = raw.decode("utf-8", errors="replace")
    if "json" in content_type.lower():
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def run(ctx, payload):
    method = str(ctx.config.get("method") or "GET").upper()
    if method not in METHODS:
        raise ModuleError(f"unknown method '{method}'")
    url = ctx.config.get("url")
    if not isinstance(url, str) or urlsplit(url.strip()).scheme not in ("http", "https") or not urlsplit(url.strip()).netloc:
        raise ModuleError(f"'url' must be an http:// or https:// address, not {url!r}")
    url = url.strip()
    headers = _headers(ctx.config.get("headers"))
    body = _body(ctx.config.get("body"), headers)
    try:
        timeout = float(ctx.config.get("timeout_s") or 30)
    except (TypeError, ValueError):
        raise ModuleError("'timeout_s' must be a number of seconds") from None
    if ctx.simulate:
        payload["data"]["response"] = {"simulated": True, "method": method, "url": url,
                                       "body_bytes": len(body or b"")}
        ctx.log(f"Would send {method} {url} (simulation: nothing sent).")
        return payload
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status, reason = response.status, response.reason
            response_headers = dict(response.headers.items())
            raw = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        status, reason = exc.code, exc.reason
        response_headers = dict(exc.headers.items()) if exc.headers else {}
        raw = exc.read(MAX_RESPONSE_BYTES + 1) if exc.fp else b""
    except urllib.error.URLError as exc:
        raise ModuleError(f"{method} {url} failed: {exc.reason}") from None
    except TimeoutError:
        raise ModuleError(f"{method} {url} timed out after {timeout:g} s") from None
    except OSError as exc:
        raise ModuleError(f"{method} {url} failed: {exc}") from None
    if len(raw) > MAX_RESPONSE_BYTES:
        raise ModuleError(f"the response of {url} is larger than {MAX_RESPONSE_BYTES} bytes")
    content_type = response_headers.get("Content-Type", "")
    payload["data"]["response"] = {"status": status, "reason": reason, "headers": response_headers,
                                   "body": _decode(raw, content_type), "url": url}
    ctx.log(f"{method} {url}: {status} {reason}")
    if status >= 400 and ctx.config.get("fail_on_http_error", True) not in (False, "false", 0):
        raise ModuleError(f"{method} {url} answered {status} {reason}")
    return payload
