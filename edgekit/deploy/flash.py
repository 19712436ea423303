"""``edgekit flash``: a signed bundle onto cameras over SSH (asyncssh), many at once.

Per camera: connect, the host key checked against the fleet's known_hosts (an unknown or changed key is
refused, never learned); upload this edgekit's device app and the bundle, each to a ``.part`` name
renamed into place when complete; on the camera, ``edgekit-device.pyz verify`` checks the signature
against the camera's own trusted keys and unpacks the bundle into a new slot; a device-kit bundle has its
TensorRT engines built there (``build``, into ``engines/<slot>/``); ``golden`` runs the bundle's golden
images through the new slot's model and compares them with the outputs validation produced; only then
does ``activate`` switch the active slot by one atomic rename. Any failure, a killed transfer included, leaves the active slot as
it was; the previous slot stays for ``edgekit rollback``. Remote commands are argument lists quoted by
:func:`shlex.join`; nothing is built from text read off a camera or a bundle.
"""
from __future__ import annotations

import asyncio
import json
import logging
import shlex
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

from edgekit.camera import pack
from edgekit.camera.bundle import peek_manifest
from edgekit.camera.slots import bundle_id
from edgekit.deploy.fleet import Camera, Fleet
from edgekit.errors import EdgekitError

Step = Callable[[str], None]          # told each step's name, for progress (and for tests that interrupt)
CONNECT_TIMEOUT_S = 20.0
KEEPALIVE_S, KEEPALIVE_MISSES = 10.0, 3          # a camera silent for 30 s is a dropped link
COMMAND_TIMEOUT_S = {"build": 3600.0}            # a device command's limit (engines build for long on a Nano)
DEFAULT_COMMAND_TIMEOUT_S = 300.0
MAX_IN_FLIGHT = 16                               # cameras flashed at once
STEPS = ("connect", "upload app", "upload bundle", "verify", "golden", "activate")   # every camera's, in order


def _asyncssh():
    try:
        import asyncssh
    except ImportError:
        raise EdgekitError("flashing needs asyncssh (pip install asyncssh)") from None
    return asyncssh


async def _connect(camera: Camera, known_hosts: Path):
    asyncssh = _asyncssh()
    if not known_hosts.is_file():
        raise EdgekitError(f"{known_hosts}: known_hosts not found (add each camera's host key: ssh-keyscan, "
                           "checked against the camera's console)")
    try:
        return await asyncssh.connect(camera.host, port=camera.port, username=camera.user,
                                      client_keys=[str(camera.identity)], known_hosts=str(known_hosts),
                                      agent_path=None, connect_timeout=CONNECT_TIMEOUT_S,
                                      keepalive_interval=KEEPALIVE_S, keepalive_count_max=KEEPALIVE_MISSES)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise EdgekitError(f"{camera.name}: host key of {camera.host}:{camera.port} is not the one in "
                           f"{known_hosts} (unknown or changed): refused ({exc.reason})") from None
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        raise EdgekitError(f"{camera.name}: identity {camera.identity} cannot be used ({exc}; a passphrase-"
                           "protected key needs an agent-free, unencrypted deployment key)") from None
    except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
        raise EdgekitError(f"{camera.name}: cannot connect to {camera.host}:{camera.port} "
                           f"({exc or type(exc).__name__})") from None


async def _device(conn, camera: Camera, app: str, *args: str) -> Any:
    """Run ``python3 <app> args...`` on the camera within its time limit; its one JSON line, or its one-line
    error. The limit holds on both ends: coreutils' ``timeout`` kills the command on the camera (TERM, then
    KILL 5 s later), and the workstation stops waiting shortly after, should the link hang instead."""
    limit = COMMAND_TIMEOUT_S.get(args[0], DEFAULT_COMMAND_TIMEOUT_S)
    command = ["timeout", "-k", "5", f"{limit:g}", camera.python, app, *args]
    try:
        result = await conn.run(shlex.join(command), check=False, timeout=limit + 15)
    except _asyncssh().TimeoutError:
        raise EdgekitError(f"{camera.name}: {args[0]} did not answer within {limit:g} s (link hung)") from None
    if result.exit_status in (124, 137):
        raise EdgekitError(f"{camera.name}: {args[0]} did not finish within {limit:g} s: stopped on the camera")
    if result.exit_status != 0:
        last = (result.stderr or result.stdout or "").strip().splitlines()
        said = last[-1].removeprefix("error: ") if last else f"exit status {result.exit_status}"
        if result.exit_signal:
            said = f"{args[0]} was killed on the camera ({result.exit_signal[0]})"
        raise EdgekitError(f"{camera.name}: {said}")
    lines = (result.stdout or "").strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise EdgekitError(f"{camera.name}: {args[0]} answered no JSON line") from None


async def _put(sftp, camera: Camera, local: Path, remote: str, step: Step = lambda name: None) -> None:
    """Upload to ``remote.part``, then rename into place: a killed transfer leaves no file under the name. A
    refused write is named with the room left on the camera (SFTP servers report a full disk as "Failure")."""
    def progress(src: bytes, dst: bytes, done: int, total: int) -> None:
        step(f"sent {done}/{total}")
    try:
        await sftp.put(str(local), remote + ".part", progress_handler=progress)
    except _asyncssh().SFTPError as exc:
        try:
            vfs = await sftp.statvfs(camera.install)
            room = (f"; {vfs.bavail * vfs.frsize // 1024} KiB free in {camera.install}, "
                    f"{local.stat().st_size // 1024} KiB to send")
        except _asyncssh().SFTPError:
            room = ""
        raise EdgekitError(f"{camera.name}: upload of {Path(remote).name} refused by the camera "
                           f"({exc.reason}{room})") from None
    await sftp.posix_rename(remote + ".part", remote)


async def _on_camera(camera: Camera, known_hosts: Path, app: Path, work, step: Step = lambda name: None):
    """Connect, make sure this edgekit's device app is on the camera, then ``work(conn, sftp, remote_app)``."""
    remote_app = f"{camera.install}/app/{app.name}"
    step("connect")
    async with await _connect(camera, known_hosts) as conn, conn.start_sftp_client() as sftp:
        for folder in ("app", "incoming"):
            await sftp.makedirs(f"{camera.install}/{folder}", exist_ok=True)
        for name in await sftp.listdir(f"{camera.install}/incoming"):       # transfers an earlier cut left
            if name.endswith(".part"):
                await sftp.remove(f"{camera.install}/incoming/{name}")
        step("upload app")
        if not await sftp.exists(remote_app):
            await _put(sftp, camera, app, remote_app)
        return await work(conn, sftp, remote_app)


async def flash_one(camera: Camera, known_hosts: Path, bundle: Path, app: Path, step: Step) -> dict[str, Any]:
    remote_bundle = f"{camera.install}/incoming/{bundle_id(bundle)}.bundle"

    async def work(conn, sftp, remote_app: str) -> dict[str, Any]:
        step("upload bundle")
        await _put(sftp, camera, bundle, remote_bundle, step)
        step("verify")
        try:
            verified = await _device(conn, camera, remote_app, "verify", remote_bundle, "--install", camera.install)
        finally:
            await sftp.remove(remote_bundle)
        links = await _device(conn, camera, remote_app, "status", "--install", camera.install)
        in_use = {name: (link or {}).get("slot") for name, link in links.items()}
        if verified["slot"] == in_use["active"]:       # this very bundle runs already: nothing is rebuilt or moved
            return {"camera": camera.name, "status": "active", **in_use, "golden": "already active: nothing changed"}
        if verified.get("kind") == "device-kit" and verified["slot"] != in_use["previous"]:
            # TensorRT engines are built on the camera, beside the slot; the previous slot's, built and checked
            # when it was flashed, are never rebuilt in place (a rollback must find them as they were)
            step("build engines")
            slot = f"{camera.install}/slots/{verified['slot']}"
            await _device(conn, camera, remote_app, "build", "--kit", f"{slot}/model", "--out",
                          f"{camera.install}/engines/{verified['slot']}", "--json")
        step("golden")
        checked = await _device(conn, camera, remote_app, "golden", verified["slot"], "--install", camera.install)
        step("activate")
        links = await _device(conn, camera, remote_app, "activate", verified["slot"], "--install", camera.install)
        worst = max((o["deviation"] / o["tolerance"] for o in checked["outputs"].values()), default=0.0)
        return {"camera": camera.name, "status": "active", **links,
                "golden": f"{checked['images']} golden images within {worst:.0%} of the tolerance"}
    return await _on_camera(camera, known_hosts, app, work, step)


async def _slot_command(camera: Camera, known_hosts: Path, app: Path, command: str) -> dict[str, Any]:
    async def work(conn, sftp, remote_app: str) -> dict[str, Any]:
        return await _device(conn, camera, remote_app, command, "--install", camera.install)
    return {"camera": camera.name, "status": "ok", **await _on_camera(camera, known_hosts, app, work)}


def _gather(cameras: list[Camera], work: Callable[[Camera], Awaitable[dict]],
            max_in_flight: int = MAX_IN_FLIGHT) -> list[dict[str, Any]]:
    """Run ``work`` on the cameras, ``max_in_flight`` at a time; each camera's result or its one-line failure.
    Whatever goes wrong with one camera (a refused key, a dropped link, a bug met on its answers) is that
    camera's failure and never cancels or holds another."""
    async def guarded(camera: Camera, room: asyncio.Semaphore) -> dict[str, Any]:
        async with room:
            started = time.monotonic()
            try:
                result = await work(camera)
            except EdgekitError as exc:
                result = {"camera": camera.name, "status": "failed", "error": str(exc)}
            except Exception as exc:  # noqa: BLE001 - the link dropped mid-step, or anything else: this camera's
                result = {"camera": camera.name, "status": "failed",
                          "error": f"{camera.name}: {type(exc).__name__}: {exc}"}
            return {**result, "seconds": round(time.monotonic() - started, 2)}

    async def everything() -> list[dict[str, Any]]:
        asyncio.get_running_loop().set_exception_handler(_quiet_about_lost_cameras)
        room = asyncio.Semaphore(max(1, max_in_flight))
        return list(await asyncio.gather(*(guarded(c, room) for c in cameras)))
    asyncio_log = logging.getLogger("asyncio")
    level = asyncio_log.level
    asyncio_log.setLevel(logging.ERROR)        # "socket.send() raised exception." for each write to a dead link
    try:
        return asyncio.run(everything())
    finally:
        asyncio_log.setLevel(level)


def _quiet_about_lost_cameras(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """A camera that dies mid-upload leaves asyncssh's parallel SFTP writers with a lost connection nobody
    awaits: that camera's failure is its row in the table, not a traceback on the terminal."""
    if isinstance(context.get("exception"), (OSError, EOFError)) or \
            type(context.get("exception")).__module__.startswith("asyncssh"):
        return
    loop.default_exception_handler(context)


def app_file(folder: Path) -> Path:
    """This edgekit's device app, named by its content (a camera keeps each version it was sent)."""
    tmp = pack.write_app(Path(folder) / pack.APP)
    final = tmp.with_name(f"edgekit-device-{bundle_id(tmp)}.pyz")
    tmp.rename(final)
    return final


def flash(fleet: Fleet, cameras: list[Camera], bundle: Path, dry_run: bool = False,
          step: Callable[[Camera, str], None] = lambda camera, name: None) -> list[dict[str, Any]]:
    """Flash ``bundle`` onto ``cameras``; one result per camera (``status`` active, failed or planned)."""
    manifest = peek_manifest(bundle)
    wrong = [c.name for c in cameras if c.target != manifest.get("target")]
    if wrong:
        raise EdgekitError(f"{bundle}: built for {manifest.get('target')}; camera(s) {', '.join(wrong)} are "
                           "another target: refused before connecting")
    if dry_run:
        return [{"camera": c.name, "status": "planned", "host": f"{c.user}@{c.host}:{c.port}", "install": c.install,
                 "bundle": f"{manifest.get('recipe')} {manifest.get('artifact')}"} for c in cameras]
    with tempfile.TemporaryDirectory() as tmp:
        app = app_file(Path(tmp))
        return _gather(cameras, lambda c: flash_one(c, fleet.known_hosts, bundle, app, lambda name: step(c, name)))


def rollback(fleet: Fleet, cameras: list[Camera]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        app = app_file(Path(tmp))
        return _gather(cameras, lambda c: _slot_command(c, fleet.known_hosts, app, "rollback"))


def status(fleet: Fleet, cameras: list[Camera]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        app = app_file(Path(tmp))
        return _gather(cameras, lambda c: _slot_command(c, fleet.known_hosts, app, "status"))
