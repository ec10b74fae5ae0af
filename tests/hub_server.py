"""A small Hugging Face Hub-compatible server on 127.0.0.1 for tests (huggingface_hub honours HF_ENDPOINT).

Only the endpoints that huggingface_hub 2.4.0 calls on this project's paths, read from its code:
- download (hf_hub_download, via file_download.get_hf_file_metadata / http_get):
    HEAD and GET /{repo}/resolve/{revision}/{path}  -> X-Repo-Commit, ETag (X-Linked-Etag / X-Linked-Size
    for LFS files); errors carry X-Error-Code RepoNotFound / RevisionNotFound / EntryNotFound
- what transformers' AutoTokenizer asks besides files: GET /api/models/{repo}[/revision/{revision}]
  (model_info: tags, siblings with their sizes, which mclmcf.serving.weights checks before downloading) and
  GET /api/models/{repo}/tree/{revision}[/{folder}] (list_repo_tree, list_repo_files); its once-a-day
  GET /api/agent-harnesses (user-agent detection) gets a 404, which it ignores
- push (HfApi.create_repo, upload_folder -> create_commit; with HF_HUB_DISABLE_XET=1, since the Xet
  protocol of hf_xet is not emulated here):
    POST /api/repos/create                               {"name", "organization"} -> {"url"}; 409 if it exists
    POST /api/validate-yaml                              README front matter check
    POST /api/models/{repo}/preupload/{revision}         upload mode per file (lfs for binary files)
    POST /{repo}.git/info/lfs/objects/batch              LFS basic transfer: upload + verify hrefs
    PUT  /lfs/{oid}                                      the LFS object (sha256 checked)
    POST /{repo}.git/info/lfs/objects/verify
    POST /api/models/{repo}/commit/{revision}            NDJSON: header, file (base64), lfsFile
    POST /api/models/{repo}/tag/{revision}               HfApi.create_tag
- Spaces (mclmcf.deploy): the same create / preupload / LFS / commit endpoints under /api/spaces/{repo} and
  /spaces/{repo}.git (create_repo(repo_type="space", space_sdk=...) records the SDK and visibility and, as the
  Hub does, makes a first commit with .gitattributes and a README), and
    GET  /api/whoami-v2                                  the token's user (401 for another token)
    GET  /api/spaces/{repo}[/revision/{rev}|/tree/{rev}] space_info, list_repo_files (?recursive=true)
    GET  /spaces/{repo}/resolve/{revision}/{path}        snapshot_download(repo_type="space")
    GET/POST /api/spaces/{repo}/variables                get_space_variables / add_space_variable
    POST /api/spaces/{repo}/hardware                     request_space_hardware {"flavor"}
    GET  /api/spaces/{repo}/runtime                      get_space_runtime
  Space repos are kept in ``HubServer.repos`` under ``spaces/{repo}``, model repos under ``{repo}``.
Writes need "Authorization: Bearer <token>". Every request is logged in ``HubServer.log`` as (method, path).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

BINARY_SUFFIXES = (".safetensors", ".bin", ".png", ".npz", ".mp4")


@dataclass
class Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)   # sha -> {path: content}
    refs: dict[str, str] = field(default_factory=dict)                   # branch or tag -> sha
    lfs: set[str] = field(default_factory=set)                           # paths stored through LFS
    settings: dict = field(default_factory=dict)                         # create_repo's payload (type, sdk, ...)
    variables: dict[str, dict] = field(default_factory=dict)             # Space variables: key -> {value, ...}
    hardware: str | None = None                                          # the Space hardware last requested

    def resolve(self, revision: str) -> str | None:
        return self.refs.get(revision) or (revision if revision in self.commits else None)


class HubServer:
    def __init__(self, token: str = "hf_test_token"):
        self.token = token
        self.user = "tester"                             # whoami's name for the token
        self.repos: dict[str, Repo] = {}
        self.objects: dict[str, bytes] = {}              # LFS store: sha256 -> content
        self.log: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def requests(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.log if m == method and re.search(pattern, p))

    def files(self, key: str, revision: str = "main") -> dict[str, bytes]:
        """The files of repo ``key`` (``owner/name`` or ``spaces/owner/name``) at ``revision``."""
        repo = self.repos[key]
        return repo.commits[repo.resolve(revision)]


def point_hub_client_at(url: str, monkeypatch, cache: Path | None = None) -> None:
    """This process's huggingface_hub sends its requests to ``url`` (Xet off: not emulated here) and, when given,
    caches downloads in ``cache``."""
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    if cache is not None:
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))


def _key(kind: str | None, repo_id: str) -> str:
    """Where a repo is kept in HubServer.repos: ``kind`` is a URL's "spaces"/"models" part or a create type."""
    return f"spaces/{repo_id}" if (kind or "").strip("/") in ("spaces", "space") else repo_id


def _upload_mode(path: str) -> str:
    return "lfs" if path.endswith(BINARY_SUFFIXES) else "regular"


def _oid(path: str, content: bytes) -> str:
    """The oid preupload reports for a file already there, as the client computes it to skip unchanged files:
    sha256 for LFS files, the git blob sha1 for regular ones."""
    if _upload_mode(path) == "lfs":
        return hashlib.sha256(content).hexdigest()
    return hashlib.sha1(b"blob %d" % len(content) + bytes(1) + content).hexdigest()


def _commit_sha(parent: str | None, files: dict[str, bytes], message: str) -> str:
    h = hashlib.sha1(f"{parent}|{message}".encode())
    for path in sorted(files):
        h.update(path.encode() + hashlib.sha1(files[path]).digest())
    return h.hexdigest()


def _handler(hub: HubServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):   # keep test output quiet; requests are in hub.log
            pass

        # ---- plumbing ----
        def reply(self, status: int, body: bytes | dict | None = None, headers: dict | None = None) -> None:
            data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
            self.send_response(status)
            for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def error(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
            self.reply(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})

        def body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def authorised(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {hub.token}":
                return True
            self.error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return False

        def route(self) -> str:
            path = urlsplit(self.path).path
            with hub.lock:
                hub.log.append((self.command, path))
            return path

        # ---- downloads ----
        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            route = self.route()
            if route == "/api/whoami-v2":
                if self.authorised():
                    self.reply(200, {"type": "user", "name": hub.user, "auth": {"accessToken": {"role": "write"}}})
                return
            if settings := re.fullmatch(r"/api/spaces/([^/]+/[^/]+)/(variables|runtime)", route):
                return self.space_settings(settings[1], settings[2], {})
            api = re.fullmatch(r"/api/(?:models|spaces)/([^/]+/[^/]+)(?:/(revision|tree)/([^/]+)(?:/(.+))?)?", route)
            m = api or re.fullmatch(r"/(?:spaces/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", route)
            if not m:
                return self.error(404, "NotFound", "no such endpoint in the test hub")
            repo_id = m[1]
            revision, path = (unquote(m[3] or "main"), unquote(m[4] or "")) if api else (unquote(m[2]), unquote(m[3]))
            repo = hub.repos.get(_key("spaces" if route.startswith(("/api/spaces/", "/spaces/")) else "models", repo_id))
            if repo is None:
                return self.error(404, "RepoNotFound", f"Repository {repo_id} not found")
            sha = repo.resolve(revision)
            if sha is None:
                return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            files = repo.commits[sha]
            if api and m[2] == "tree":
                return self.tree(files, path, recursive="recursive=true" in urlsplit(self.path).query.lower())
            if api:   # model_info (transformers asks for the tags)
                return self.reply(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": False, "tags": [],
                                        "siblings": [{"rfilename": p, "size": len(files[p])} for p in sorted(files)]})
            if path not in files:
                return self.error(404, "EntryNotFound", f"{path} does not exist at {revision}", {"X-Repo-Commit": sha})
            content = files[path]
            headers = {"X-Repo-Commit": sha, "Content-Type": "application/octet-stream"}
            if path in repo.lfs:
                oid = hashlib.sha256(content).hexdigest()
                headers.update({"ETag": f'"{oid}"', "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(content))})
            else:
                headers["ETag"] = f'"{hashlib.sha1(b"blob %d" % len(content) + bytes(1) + content).hexdigest()}"'
            self.reply(200, content, headers)

        def tree(self, files: dict[str, bytes], folder: str, recursive: bool = False) -> None:
            """list_repo_tree, one level (transformers lists additional_chat_templates/ and the root), or every
            file below ``folder`` when ``recursive`` (list_repo_files, upload_folder's delete_patterns)."""
            prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
            entries: dict[str, dict] = {}
            for p, content in sorted(files.items()):
                if p.startswith(prefix):
                    head, sep, _ = p[len(prefix):].partition("/")
                    if recursive:
                        head, sep = p[len(prefix):], ""
                    entries[prefix + head] = ({"type": "directory", "path": prefix + head, "oid": "0" * 40} if sep else
                                              {"type": "file", "path": p, "size": len(content),
                                               "oid": hashlib.sha1(content).hexdigest()})
            if prefix and not entries:
                return self.error(404, "EntryNotFound", f"{folder} does not exist")
            data = json.dumps(list(entries.values())).encode()
            self.reply(200, data)

        # ---- uploads ----
        def do_PUT(self):
            m = re.fullmatch(r"/lfs/([0-9a-f]{64})", self.route())
            data = self.body()
            if not m:
                return self.error(404, "NotFound", "no such endpoint in the test hub")
            if hashlib.sha256(data).hexdigest() != m[1]:
                return self.error(400, "BadRequest", "content does not match its sha256")
            with hub.lock:
                hub.objects[m[1]] = data
            self.reply(200, {})

        def do_POST(self):
            path = self.route()
            data = self.body()
            if not self.authorised():
                return
            if path == "/api/validate-yaml":
                return self.reply(200, {"errors": [], "warnings": []})
            if path == "/api/repos/create":
                payload = json.loads(data)
                repo_id = f"{payload['organization']}/{payload['name']}"
                key = _key(payload.get("type"), repo_id)
                with hub.lock:
                    if key in hub.repos:   # the Hub's 409 also carries the url (create_repo(exist_ok=True) reads it)
                        return self.reply(409, {"error": "You already created this model repo",
                                                "url": f"{hub.url}/{key}"}, {"X-Error-Message": "conflict"})
                    hub.repos[key] = Repo(settings=payload)
                    if key != repo_id:   # a new Space starts with the Hub's first commit
                        first = {".gitattributes": b"*.mp4 filter=lfs diff=lfs merge=lfs -text\n",
                                 "README.md": f"---\nsdk: {payload.get('sdk')}\n---\n".encode()}
                        hub.repos[key].commits[sha := _commit_sha(None, first, "initial commit")] = first
                        hub.repos[key].refs["main"] = sha
                return self.reply(200, {"url": f"{hub.url}/{key}", "name": repo_id})
            if m := re.fullmatch(r"/((?:spaces/)?[^/]+/[^/]+)\.git/info/lfs/objects/(batch|verify)", path):
                return self.lfs(m[1], m[2], json.loads(data))
            if m := re.fullmatch(r"/api/spaces/([^/]+/[^/]+)/(variables|hardware)", path):
                return self.space_settings(m[1], m[2], json.loads(data))
            m = re.fullmatch(r"/api/(?:models|spaces)/([^/]+/[^/]+)/(preupload|commit|tag)/([^/]+)", path)
            if not m:
                return self.error(404, "NotFound", "no such endpoint in the test hub")
            repo_id, action, revision = _key(path.split("/")[2], m[1]), m[2], unquote(m[3])
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self.error(404, "RepoNotFound", f"Repository {repo_id} not found")
            if action == "preupload":
                current = repo.commits.get(repo.refs.get(revision, ""), {})
                files = [{"path": f["path"], "uploadMode": _upload_mode(f["path"]),
                          "shouldIgnore": False,
                          "oid": _oid(f["path"], current[f["path"]]) if f["path"] in current else None}
                         for f in json.loads(data)["files"]]
                return self.reply(200, {"files": files, "commitOid": repo.refs.get(revision)})
            if action == "tag":
                sha = repo.resolve(revision)
                if sha is None:
                    return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                repo.refs[json.loads(data)["tag"]] = sha
                return self.reply(200, {})
            return self.commit(repo_id, repo, revision, data)

        def space_settings(self, repo_id: str, what: str, payload: dict) -> None:
            """Space variables (read, or one added), the hardware request and the runtime it reports."""
            if not self.authorised():
                return
            space = hub.repos.get(_key("spaces", repo_id))
            if space is None:
                return self.error(404, "RepoNotFound", f"Space {repo_id} not found")
            with hub.lock:
                if what == "variables" and payload:
                    space.variables[payload["key"]] = {"value": payload["value"], "description": payload.get("description"),
                                                       "updatedAt": "2026-01-01T00:00:00.000Z"}
                if what == "hardware":
                    space.hardware = payload["flavor"]
            if what == "variables":
                return self.reply(200, space.variables)
            self.reply(200, {"stage": "BUILDING", "hardware": {"current": None, "requested": space.hardware}})

        def lfs(self, repo_id: str, action: str, payload: dict) -> None:
            if action == "verify":
                ok = payload["oid"] in hub.objects
                return self.reply(200 if ok else 404, {} if ok else {"message": "object not uploaded"})
            objects = []
            for obj in payload["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in hub.objects:
                    entry["actions"] = {"upload": {"href": f"{hub.url}/lfs/{obj['oid']}"},
                                        "verify": {"href": f"{hub.url}/{repo_id}.git/info/lfs/objects/verify"}}
                objects.append(entry)
            self.reply(200, {"transfer": "basic", "objects": objects})

        def commit(self, repo_id: str, repo: Repo, revision: str, data: bytes) -> None:
            parent = repo.refs.get(revision)
            files = dict(repo.commits.get(parent, {}))
            message = ""
            lfs_paths = set()
            for line in data.splitlines():
                item = json.loads(line)
                value = item["value"]
                if item["key"] == "header":
                    message = value["summary"]
                elif item["key"] == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif item["key"] == "lfsFile":
                    if value["oid"] not in hub.objects:
                        return self.error(422, "BadRequest", f"LFS object {value['oid']} was not uploaded")
                    files[value["path"]] = hub.objects[value["oid"]]
                    lfs_paths.add(value["path"])
                elif item["key"] == "deletedFile":
                    files.pop(value["path"], None)
            sha = _commit_sha(parent, files, message)
            with hub.lock:
                repo.commits[sha] = files
                repo.refs[revision] = sha
                repo.lfs |= lfs_paths
            self.reply(200, {"commitUrl": f"{hub.url}/{repo_id}/commit/{sha}", "commitOid": sha,
                             "pullRequestUrl": None})

    return Handler
