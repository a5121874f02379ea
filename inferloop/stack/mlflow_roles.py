"""Who may do what in the prod profile's MLflow: its roles and accounts, made by `inferloop up`.

MLflow's basic-auth app grants per resource: READ (see), EDIT (also change: log runs, register a
version, set an alias), MANAGE (also delete, e.g. remove an alias, and grant). Its checks
(mlflow.server.auth, 3.17): CreateModelVersion and SetRegisteredModelAlias both need `update` on
the registered model (EDIT), DeleteRegisteredModelAlias needs `delete` (MANAGE), and a grant
covers a whole model, never one alias. So MLflow cannot let an account register versions (or set
`@challenger`) yet keep it from moving `@champion`: whoever may train may also promote. inferloop
therefore grants registry writes to approvers only:

- `approver`: MANAGE on every registered model, READ on every experiment: may move and remove
  `@champion` and `@previous_champion`. The loop's own account (MLFLOW_TRACKING_USERNAME, which
  trains and runs the promotion flow under its gates and lock) holds it; so does a person who
  approves, once assigned.
- `reader`: READ on every registered model and experiment: browses runs, versions and aliases;
  every change is refused (403). The account `inferloop-reader` holds it.
- MLflow's admin (`inferloop-admin` locally) may do anything; only `inferloop up` uses it, to make
  the above (`python -m inferloop.stack.mlflow_roles` for compose and Kubernetes). The loop's
  account is no admin: its credentials, which every flow run and Dask worker holds, cannot create
  accounts or grant themselves more.

Idempotent: what exists is kept, what is missing is added, so every `inferloop up` runs it.
"""

from dataclasses import dataclass

from inferloop.core.errors import InferloopError

ADMIN_USER = "inferloop-admin"
READER_USER = "inferloop-reader"
APPROVER_ROLE = "approver"
READER_ROLE = "reader"
WORKSPACE = "default"  # MLflow's one workspace when workspaces are off
ROLE_GRANTS = {
    APPROVER_ROLE: (("registered_model", "*", "MANAGE"), ("experiment", "*", "READ")),
    READER_ROLE: (("registered_model", "*", "READ"), ("experiment", "*", "READ")),
}


class MlflowRolesError(InferloopError, RuntimeError):
    """MLflow refused to set up the prod profile's roles and accounts."""


@dataclass(frozen=True)
class Account:
    username: str
    password: str
    role: str


class _AdminSession:
    """MLflow's auth API as its admin."""

    def __init__(self, tracking_uri: str, username: str, password: str):
        import requests

        self._uri = tracking_uri.rstrip("/")
        self._session = requests.Session()
        self._session.auth = (username, password)

    def call(self, method: str, path: str, missing_ok: bool = False, **payload) -> dict | None:
        json, params = (None, payload) if method == "GET" else (payload, None)
        response = self._session.request(
            method, f"{self._uri}/api/{path}", json=json, params=params, timeout=30
        )
        if missing_ok and response.status_code == 404:
            return None
        if not response.ok:
            what = f"{method} /api/{path}" + (f" for {payload['username']}" if "username" in payload else "")
            raise MlflowRolesError(
                f"MLflow at {self._uri} refused {what} ({response.status_code}: "
                f"{response.text[:200]}); see its log under the stack dir"
            )
        return response.json() if response.content else {}


def _ensure_role(admin: _AdminSession, name: str) -> int:
    listed = admin.call("GET", "3.0/mlflow/roles/list", workspace=WORKSPACE)["roles"]
    role = next((r for r in listed if r["name"] == name), None)
    if role is None:
        role = admin.call("POST", "3.0/mlflow/roles/create", name=name, workspace=WORKSPACE)["role"]
    granted = {(p["resource_type"], p["resource_pattern"], p["permission"]) for p in role["permissions"]}
    for resource_type, pattern, permission in ROLE_GRANTS[name]:
        if (resource_type, pattern, permission) not in granted:
            admin.call(
                "POST",
                "3.0/mlflow/roles/permissions/add",
                role_id=role["id"],
                resource_type=resource_type,
                resource_pattern=pattern,
                permission=permission,
            )
    return role["id"]


def _ensure_account(admin: _AdminSession, account: Account, role_id: int) -> None:
    login = {"username": account.username, "password": account.password}
    if admin.call("GET", "2.0/mlflow/users/get", missing_ok=True, username=account.username) is None:
        admin.call("POST", "2.0/mlflow/users/create", **login)
    else:  # the password the credentials file holds now (it may have been changed there)
        admin.call("PATCH", "2.0/mlflow/users/update-password", **login)
    # An account made admin by an earlier version of the stack loses that here.
    admin.call("PATCH", "2.0/mlflow/users/update-admin", username=account.username, is_admin=False)
    held = admin.call("GET", "3.0/mlflow/users/roles/list", username=account.username)["roles"]
    if role_id not in {r["id"] for r in held}:
        admin.call("POST", "3.0/mlflow/roles/assign", username=account.username, role_id=role_id)


def ensure_roles(tracking_uri: str, admin: tuple[str, str], accounts: list[Account]) -> None:
    """The roles of ROLE_GRANTS, and each account with its password and role, made as `admin`
    (user name, password)."""
    session = _AdminSession(tracking_uri, *admin)
    role_ids = {name: _ensure_role(session, name) for name in ROLE_GRANTS}
    for account in accounts:
        _ensure_account(session, account, role_ids[account.role])


def main() -> None:
    """For compose and Kubernetes, once MLflow is up: `python -m inferloop.stack.mlflow_roles URI`
    with MLflow's MLFLOW_AUTH_ADMIN_* and the loop's MLFLOW_TRACKING_* in the environment (and
    MLFLOW_READER_PASSWORD to make `inferloop-reader` too)."""
    import os
    import sys

    if len(sys.argv) != 2:
        sys.exit(main.__doc__)
    env = os.environ
    needed = ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_TRACKING_USERNAME")
    if missing := [name for name in (*needed, "MLFLOW_TRACKING_PASSWORD") if not env.get(name)]:
        sys.exit(f"Set {', '.join(missing)} first. {main.__doc__}")
    accounts = [Account(env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"], APPROVER_ROLE)]
    if env.get("MLFLOW_READER_PASSWORD"):
        accounts.append(Account(READER_USER, env["MLFLOW_READER_PASSWORD"], READER_ROLE))
    try:
        ensure_roles(
            sys.argv[1], (env["MLFLOW_AUTH_ADMIN_USERNAME"], env["MLFLOW_AUTH_ADMIN_PASSWORD"]), accounts
        )
    except MlflowRolesError as error:
        sys.exit(str(error))
    print(
        f"MLflow at {sys.argv[1]}: roles {', '.join(ROLE_GRANTS)}; "
        + ", ".join(f"{a.username} ({a.role})" for a in accounts)
    )


if __name__ == "__main__":
    main()
