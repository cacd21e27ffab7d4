"""Who may log in to the console (development: a users file) and the key that signs its sessions.

The users file is TOML, mode 600, outside the work tree (settings console.users_file):

    [users."centre-S1"]
    password_hash = "$argon2id$v=19$m=65536,t=3,p=4$..."   # argon2-cffi, never the password itself
    sectors = ["S1"]                                        # what this user sees and acts on

`borderfuse console users add NAME --sectors S1,S2` adds or replaces one user. For development
`ensure_dev_users` makes one user per centre (centre-S1 -> ["S1"], ...) and a `supervisor` with every
sector, with generated passwords that it writes beside the users file in `console-dev-logins.toml`
(mode 600) so that the demo can say how to log in. A deployment uses its OIDC provider instead
(console.auth = "oidc").
"""
from __future__ import annotations

import re
import secrets
import stat
import threading
import tomllib
from pathlib import Path
from typing import Iterable

import attrs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from borderfuse.ingest.private_files import open_to_others, write_private

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
DEV_LOGINS_NAME = "console-dev-logins.toml"
SUPERVISOR = "supervisor"
_HASHER = PasswordHasher()   # argon2id with the library's current defaults (RFC 9106 low-memory profile)


class UsersFileError(ValueError):
    """The users file (or the session key file) is missing, malformed or too open; the message says which."""


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise UsersFileError(f"{what} {value!r} is not a valid name (letters, digits, . _ @ -; at most 64)")
    return value


@attrs.frozen(slots=True)
class User:
    name: str
    password_hash: str = attrs.field(validator=attrs.validators.min_len(1))
    sectors: tuple[str, ...] = attrs.field(converter=tuple, validator=attrs.validators.min_len(1))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsersFileError(f"the password is too short: at least {MIN_PASSWORD} characters")
    return _HASHER.hash(password)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if open_to_others(mode):
        raise UsersFileError(f"{path} is readable by others (mode {stat.S_IMODE(mode):o}): chmod 600 {path}")


def load_users(path: str | Path) -> dict[str, User]:
    """{name: User} from the users file at `path` (which must be mode 600 or stricter)."""
    path = Path(path).expanduser()
    try:
        _check_private(path)
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise UsersFileError(f"console users file {path} (console.users_file) does not exist: "
                             f"`borderfuse console users add NAME --sectors S1` makes one") from exc
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"console users file {path} cannot be read as TOML: {exc}") from exc
    users = {}
    for name, body in (data.get("users") or {}).items():
        where = f"console users file {path}: [users.{name}]"
        _name(name, f"{where}: user")
        if not isinstance(body, dict) or not isinstance(body.get("password_hash"), str) \
                or not isinstance(body.get("sectors"), list) or not body["sectors"]:
            raise UsersFileError(f"{where} needs password_hash (a string) and sectors (a non-empty list)")
        users[name] = User(name, body["password_hash"], [_name(s, f"{where}: sector") for s in body["sectors"]])
    return users


def save_users(path: str | Path, users: Iterable[User]) -> None:
    lines = ["# borderfuse console users: argon2 password hashes and each user's sectors. Never commit this file.\n"]
    for user in users:
        sectors = ", ".join(f'"{s}"' for s in user.sectors)
        lines.append(f'\n[users."{user.name}"]\npassword_hash = "{user.password_hash}"\nsectors = [{sectors}]\n')
    write_private(Path(path).expanduser(), "".join(lines))


def add_user(path: str | Path, name: str, password: str, sectors: Iterable[str],
             known_sectors: Iterable[str]) -> bool:
    """Add or replace user `name`; True if it replaced one. Sectors must be among `known_sectors`."""
    path = Path(path).expanduser()
    sectors = [_name(s.strip(), "sector") for s in sectors if s.strip()]
    unknown = sorted(set(sectors) - set(known_sectors))
    if not sectors or unknown:
        raise UsersFileError(f"unknown sector(s) {', '.join(unknown)}; known: {', '.join(sorted(known_sectors))}"
                             if unknown else "at least one sector is needed (--sectors S1,S2)")
    users = load_users(path) if path.exists() else {}
    replaced = name in users
    users[_name(name, "user")] = User(name, hash_password(password), sectors)
    save_users(path, users.values())
    return replaced


def dev_logins_path(users_file: str | Path) -> Path:
    return Path(users_file).expanduser().with_name(DEV_LOGINS_NAME)


def ensure_dev_users(users_file: str | Path, sectors: Iterable[str]) -> dict[str, str] | None:
    """A development users file when there is none: centre-<S> per sector and a supervisor with all,
    generated passwords written (mode 600) to `dev_logins_path`. Returns {name: password} if made, None if
    the users file already exists (it is never overwritten)."""
    path = Path(users_file).expanduser()
    if path.exists():
        return None
    sectors = list(sectors)
    wanted = {f"centre-{s}": [s] for s in sectors} | {SUPERVISOR: sectors}
    passwords = {name: secrets.token_urlsafe(12) for name in wanted}
    logins = ["# borderfuse console development logins (users file: "
              f"{path}). Generated; never commit this file.\n"]
    for name, password in passwords.items():
        logins.append(f'\n[users."{name}"]\npassword = "{password}"\nsectors = {wanted[name]!r}\n'.replace("'", '"'))
    write_private(dev_logins_path(path), "".join(logins))
    save_users(path, [User(name, hash_password(passwords[name]), wanted[name]) for name in wanted])
    return passwords


def read_dev_logins(users_file: str | Path) -> dict[str, str]:
    """{name: password} from the development logins file beside `users_file` ({} if there is none)."""
    path = dev_logins_path(users_file)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    return {name: body.get("password", "") for name, body in (data.get("users") or {}).items()}


class UsersFileAuth:
    """Checks passwords against the users file, re-read when it changes (a user added or removed takes
    effect without a restart: sessions carry only the user name, the sectors are looked up here)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}
        self._dummy_hash = _HASHER.hash(secrets.token_hex(16))
        self.reload()

    def reload(self) -> dict[str, User]:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise UsersFileError(f"console users file {self.path} (console.users_file) does not exist: "
                                 f"`borderfuse console users add NAME --sectors S1` makes one") from None
        with self._lock:
            if self._stamp != (st.st_mtime_ns, st.st_size):
                self._users = load_users(self.path)
                self._stamp = (st.st_mtime_ns, st.st_size)
            return self._users

    def _current(self) -> dict[str, User]:
        try:
            return self.reload()
        except UsersFileError:
            return self._users   # a broken edit in progress: keep the last good file

    def verify(self, name: str, password: str) -> User | None:
        """The user if `password` is theirs; None otherwise (as slow for an unknown name as for a wrong password)."""
        user = self._current().get(name)
        try:
            _HASHER.verify(user.password_hash if user else self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return user

    def sectors_of(self, name: str) -> tuple[str, ...] | None:
        user = self._current().get(name)
        return None if user is None else user.sectors


def session_secret(path: str | Path) -> str:
    """The session-signing key from `path`, made (random, mode 600) when missing."""
    path = Path(path).expanduser()
    if not path.exists():
        write_private(path, secrets.token_hex(32) + "\n")
    _check_private(path)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise UsersFileError(f"session key file {path} (console.session_secret_file) holds fewer than 32 characters")
    return secret
