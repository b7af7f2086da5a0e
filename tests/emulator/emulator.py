#!/usr/bin/env python3
"""A real AWS emulator (moto, pinned) on a free loopback port, seeded through its HTTP API.

Usage: emulator.py [--scenario iam|demo|scale] [--users N --groups N --roles N] [--no-auth]

Prints one JSON line once the emulator is seeded and request-signature checking is on:
  {"endpoint": "http://127.0.0.1:PORT", "account_id": ..., "reader": {...keys}, "assumer": {...},
   "connector_role_arn": ..., "external_id": ..., "users": {name: arn}, "unique_ids": {...}}
then serves until its standard input closes (the test or script that started it exits).
"""

import argparse
import json
import sys
import threading
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.iam.responses import IamResponse
from moto.identitystore.responses import IdentityStoreResponse
from moto.organizations.models import organizations_backends
from moto.organizations.responses import OrganizationsResponse
from moto.ssoadmin.responses import SSOAdminResponse
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"
EXTERNAL_ID = "c1-external-id-0123456789abcdef"
READ_ACTIONS = ["iam:GetAccountAuthorizationDetails", "iam:ListUsers", "iam:ListRoles"]


UPLOAD_BUCKET = "baton-uploads"


def trust(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(aws=None, action="sts:AssumeRole", **extra):
    principal = {}
    if aws is not None:
        principal["AWS"] = aws
    principal.update(extra.pop("principal", {}))
    stmt = {"Effect": "Allow", "Principal": principal, "Action": action}
    stmt.update(extra)
    return stmt


def arn(kind, name, path="/"):
    return f"arn:aws:iam::{ACCOUNT}:{kind}{path}{name}"


READ_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": READ_ACTIONS, "Resource": "*"}]})


def create_reader(iam):
    """The connector's read-only user: exactly the IAM actions the component declares."""
    user = iam.create_user(UserName="baton-reader")["User"]
    iam.put_user_policy(UserName="baton-reader", PolicyName="read", PolicyDocument=READ_POLICY)
    return user


def seed_iam(iam, out):
    """Users with varied paths and names, groups (one empty), memberships, and roles whose
    trust policies name users, roles, the account root, services and federated providers."""
    users = [
        ("alice@example.com", "/", [{"Key": "email", "Value": "alice.work@example.com"}]),
        ("bob", "/engineering/", []),
        ("carol+ops=1,x.y@z-w_v", "/ops/team/", []),
        ("dave", "/", []),
    ]
    for name, path, tags in users:
        kwargs = {"UserName": name, "Path": path}
        if tags:
            kwargs["Tags"] = tags
        u = iam.create_user(**kwargs)["User"]
        out["users"][name] = u["Arn"]
        out["unique_ids"][name] = u["UserId"]
    for name, path in [("admins", "/"), ("engineers", "/eng/"), ("empty", "/")]:
        iam.create_group(GroupName=name, Path=path)
    for group, members in [("admins", ["alice@example.com", "bob"]), ("engineers", ["bob", "carol+ops=1,x.y@z-w_v"])]:
        for m in members:
            iam.add_user_to_group(GroupName=group, UserName=m)

    u = out["users"]
    roles = [
        ("ops-admin", "/", trust(allow([u["bob"], u["carol+ops=1,x.y@z-w_v"]]))),
        ("read-only", "/", trust(allow(f"arn:aws:iam::{ACCOUNT}:root", principal={"Service": "ec2.amazonaws.com"}))),
        (
            "ci-deployer",
            "/",
            trust(
                allow(arn("role", "ops-admin")),
                allow(principal={"Federated": f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"}, action="sts:AssumeRoleWithSAML"),
            ),
        ),
        ("cycle-a", "/", trust(allow([u["dave"], arn("role", "cycle-b")]))),
        ("cycle-b", "/", trust(allow(arn("role", "cycle-a")))),
        (
            "denied-role",
            "/",
            trust(
                allow([u["alice@example.com"], u["bob"]]),
                {"Effect": "Deny", "Principal": {"AWS": u["bob"]}, "Action": "sts:*"},
            ),
        ),
        (
            "mfa-role",
            "/",
            trust(allow(u["alice@example.com"], Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})),
        ),
        (
            "wildcard-role",
            "/",
            trust(allow(u["bob"], action="sts:*"), allow(u["carol+ops=1,x.y@z-w_v"], action="sts:AssumeRoleWithSAML")),
        ),
        ("lambda-exec", "/service-role/", trust(allow(principal={"Service": "lambda.amazonaws.com"}))),
        ("by-id-role", "/", trust(allow(out["unique_ids"]["alice@example.com"]))),
        ("ghost-trust", "/", trust(allow(f"arn:aws:iam::{ACCOUNT}:user/ghost"))),
    ]
    for name, path, doc in roles:
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=doc, Description=f"{name} role")

    # The connector's own identities: one reads IAM directly, one may only assume the
    # connector role (so a sync through it proves the host assumed the role).
    reader = create_reader(iam)
    assumer = iam.create_user(UserName="baton-assumer")["User"]
    role = iam.create_role(
        RoleName="ConnectorRole",
        AssumeRolePolicyDocument=trust(allow(assumer["Arn"], Condition={"StringEquals": {"sts:ExternalId": EXTERNAL_ID}})),
    )["Role"]
    iam.put_role_policy(RoleName="ConnectorRole", PolicyName="read", PolicyDocument=READ_POLICY)
    iam.put_user_policy(
        UserName="baton-assumer",
        PolicyName="assume",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role["Arn"]}]}),
    )
    for name, user in [("reader", reader), ("assumer", assumer)]:
        out["users"][user["UserName"]] = user["Arn"]
        key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
        out[name] = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    out["connector_role_arn"] = role["Arn"]
    out["external_id"] = EXTERNAL_ID


def seed_scale(endpoint, iam, out, scale):
    """The benchmark's organisation, seeded in-process through moto's backends (HTTP seeding
    of the full estate takes about five minutes). At scale 1.0: 5,000 IAM users in 500 groups
    (four groups each: 20,000 memberships), 2,000 roles (each trusting three users; every
    tenth also trusting the role before it, so that grants expand), an Organization of 50
    accounts, 30 permission sets, 20,000 Identity Store users in 500 groups (two groups each:
    40,000 memberships) and 5,000 account assignments over 500 (account, permission set)
    pairs, half to groups and half to users. Every count scales with `scale`."""
    from moto.iam.models import iam_backends
    from moto.identitystore.models import identitystore_backends
    from moto.ssoadmin.models import ssoadmin_backends

    def n(full):
        return max(1, round(full * scale))

    counts = {
        "iam_users": n(5000), "iam_groups": n(500), "roles": n(2000), "accounts": n(50),
        "permission_sets": n(30), "sso_users": n(20000), "sso_groups": n(500), "assignments": n(5000),
    }
    out["estate"] = counts
    ib = iam_backends[ACCOUNT]["aws"]
    for i in range(counts["iam_users"]):
        ib.create_user("us-east-1", f"user{i:05d}", f"/dept{i % 7}/")
    for g in range(counts["iam_groups"]):
        ib.create_group(f"group{g:04d}", "/")
    for i in range(counts["iam_users"]):
        for k in range(4):
            ib.add_user_to_group(f"group{(i + k * 131) % counts['iam_groups']:04d}", f"user{i:05d}")
    users = counts["iam_users"]
    for r in range(counts["roles"]):
        principals = [arn("user", f"user{j % users:05d}", f"/dept{j % users % 7}/") for j in range(r, r + 3)]
        if r % 10 == 9:
            principals.append(arn("role", f"role{r - 1:04d}"))
        ib.create_role(f"role{r:04d}", trust(allow(principals)), "/", None, "", [], None)
    out["iam_memberships"] = 4 * users

    def client(name):
        return boto3.client(
            name, endpoint_url=endpoint, region_name=SSO_REGION, aws_access_key_id="seed", aws_secret_access_key="seed"
        )

    orgs, sso = client("organizations"), client("sso-admin")
    orgs.create_organization(FeatureSet="ALL")
    accounts = [ACCOUNT]
    for a in range(counts["accounts"] - 1):
        accounts.append(orgs.create_account(AccountName=f"account{a:03d}", Email=f"a{a}@example.com")["CreateAccountStatus"]["AccountId"])
    instance = sso.list_instances()["Instances"][0]
    instance_arn, store = instance["InstanceArn"], instance["IdentityStoreId"]
    sets = [
        sso.create_permission_set(InstanceArn=instance_arn, Name=f"PermissionSet{p:02d}")["PermissionSet"]["PermissionSetArn"]
        for p in range(counts["permission_sets"])
    ]

    isb = identitystore_backends[ACCOUNT][SSO_REGION]
    sso_users = []
    for i in range(counts["sso_users"]):
        name = f"person{i:05d}@example.com"
        uid, _ = isb.create_user(
            store, name, {"GivenName": "Person", "FamilyName": f"{i:05d}"}, f"Person {i:05d}", None, None,
            [{"Value": name, "Type": "work", "Primary": True}], None, None, None, None, None, None, None,
        )
        sso_users.append(uid)
    sso_groups = [isb.create_group(store, f"Team {g:04d}", "")[0] for g in range(counts["sso_groups"])]
    for i, uid in enumerate(sso_users):
        for k in range(2):
            isb.create_group_membership(store, sso_groups[(i + k * 97) % len(sso_groups)], {"UserId": uid})
    out["sso_memberships"] = 2 * len(sso_users)

    # Each account has a third of the permission sets assigned (none for the other pairs).
    sb = ssoadmin_backends[ACCOUNT][SSO_REGION]
    pairs = [(a, ps) for i, a in enumerate(accounts) for j, ps in enumerate(sets) if (i + j) % 3 == 0]
    per_pair = max(1, round(counts["assignments"] / len(pairs)))
    made = 0
    for p, (account, ps) in enumerate(pairs):
        for k in range(per_pair):
            # Distinct principals within a pair (AWS keeps one assignment per principal).
            if k % 2 == 0:
                ptype, pid = "GROUP", sso_groups[(p * 7 + k // 2) % len(sso_groups)]
            else:
                ptype, pid = "USER", sso_users[(p * 13 + k // 2 * 101) % len(sso_users)]
            sb.create_account_assignment(instance_arn, account, "AWS_ACCOUNT", ps, ptype, pid)
            made += 1
    out["assignment_pairs"] = len(pairs)
    out["assignments"] = made

    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ORG_READ_ACTIONS, "Resource": "*"}]})
    reader = ib.create_user("us-east-1", "baton-reader", "/")
    ib.put_user_policy("baton-reader", "read", policy)
    key = ib.create_access_key("baton-reader")
    out["reader"] = {"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key}
    out["users"]["baton-reader"] = reader.arn


def paginate_like_aws(max_page):
    """moto 5.2.5 answers ListUsers and GetAccountAuthorizationDetails in one page whatever
    MaxItems says. Make them page as IAM does (MaxItems, default 100, Marker, IsTruncated),
    never returning more than `max_page` items, so that marker loops are exercised."""

    def window(items, marker, max_items):
        start = int(marker or 0)
        size = min(int(max_items or 100), max_page)
        end = start + size
        more = end < len(items)
        return items[start:end], (str(end) if more else None)

    def list_users(self):
        users = list(self.backend.list_users(self._get_param("PathPrefix"), None, None))
        page, marker = window(users, self._get_param("Marker"), self._get_param("MaxItems"))
        result = {"Users": page, "IsTruncated": marker is not None}
        if marker:
            result["Marker"] = marker
        return ActionResult(result)

    def list_roles(self):
        max_items = min(int(self._get_param("MaxItems", 100)), max_page)
        roles, marker = self.backend.list_roles(self._get_param("PathPrefix", "/"), self._get_param("Marker", "0"), max_items)
        return ActionResult({"Roles": roles, "IsTruncated": bool(marker), "Marker": marker})

    def get_account_authorization_details(self):
        details = self.backend.get_account_authorization_details(self._get_param("Filter", []))
        entries = (
            [("users", u) for u in details["users"]]
            + [("groups", g) for g in details["groups"]]
            + [("roles", r) for r in details["roles"]]
            + [("policies", p) for p in details["managed_policies"]]
        )
        page, marker = window(entries, self._get_param("Marker"), self._get_param("MaxItems"))
        result = {
            "UserDetailList": [e for k, e in page if k == "users"],
            "GroupDetailList": [e for k, e in page if k == "groups"],
            "RoleDetailList": [e for k, e in page if k == "roles"],
            "Policies": [e for k, e in page if k == "policies"],
            "IsTruncated": marker is not None,
        }
        if marker:
            result["Marker"] = marker
        return ActionResult(result)

    IamResponse.list_users = list_users
    IamResponse.list_roles = list_roles
    IamResponse.get_account_authorization_details = get_account_authorization_details


SSO_REGION = "us-east-1"
# moto keeps no Identity Store user status; the launcher adds it for these user ids.
DISABLED_USERS = set()


def sts_like_aws():
    """AWS answers AssumeRoleWithWebIdentity unsigned (the OIDC token is the proof); moto
    5.2.5 with signature checks on fails it with a 500 for want of an Authorization header."""
    from moto.sts.responses import TokenResponse

    original = TokenResponse._authenticate_and_authorize_normal_action

    def authenticate(self, resource="*"):
        if self._get_action() == "AssumeRoleWithWebIdentity":
            return
        original(self, resource)

    TokenResponse._authenticate_and_authorize_normal_action = authenticate


def identity_center_like_aws():
    """Three gaps of moto 5.2.5 that hide what a connector does with Identity Center:
    users carry no UserStatus; ListPermissionSetsProvisionedToAccount ignores the account
    (so a connector could not avoid calls for pairs without assignments); and every region
    has an instance (so a wrong region setting could not be noticed)."""
    original_list_users = IdentityStoreResponse.list_users

    def list_users(self):
        out = json.loads(original_list_users(self))
        for u in out.get("Users", []):
            u["UserStatus"] = "DISABLED" if u["UserId"] in DISABLED_USERS else "ENABLED"
        return json.dumps(out)

    def list_permission_sets_provisioned_to_account(self):
        instance_arn = self._get_param("InstanceArn")
        account_id = self._get_param("AccountId")
        arns = []
        for a in self.ssoadmin_backend.account_assignments:
            if a.instance_arn == instance_arn and a.target_id == account_id and a.permission_set_arn not in arns:
                arns.append(a.permission_set_arn)
        return json.dumps({"PermissionSets": arns})

    original_list_instances = SSOAdminResponse.list_instances

    def list_instances(self):
        if self.region != SSO_REGION:
            return json.dumps({"Instances": []})
        return original_list_instances(self)

    # AWS refuses ListAccounts to member accounts (unless delegated); moto answers [].
    original_list_accounts = OrganizationsResponse.list_accounts

    def list_accounts(self):
        if self.current_account in organizations_backends.master_accounts:
            raise JsonRESTError("AccessDeniedException", "You don't have permissions to access this resource.")
        return original_list_accounts(self)

    OrganizationsResponse.list_accounts = list_accounts
    IdentityStoreResponse.list_users = list_users
    SSOAdminResponse.list_permission_sets_provisioned_to_account = list_permission_sets_provisioned_to_account
    SSOAdminResponse.list_instances = list_instances


MEMBER_PROVISION_ACTIONS = ["iam:ListGroupsForUser", "iam:AddUserToGroup", "iam:RemoveUserFromGroup"]
ORG_READ_ACTIONS = READ_ACTIONS + [
    "organizations:DescribeOrganization",
    "organizations:ListAccounts",
    "sso:ListInstances",
    "identitystore:ListUsers",
    "identitystore:ListGroups",
    "identitystore:ListGroupMemberships",
    "sso:ListPermissionSets",
    "sso:DescribePermissionSet",
    "sso:ListPermissionSetsProvisionedToAccount",
    "sso:ListAccountAssignments",
]


def seed_org(endpoint, iam, out):
    """An Organization of seven accounts (one closed), an Identity Center with users (some
    disabled), groups (one empty), memberships, permission sets (one assigned nowhere) and
    assignments to users and to groups, one user assigned both directly and through a group."""

    def client(name):
        return boto3.client(
            name, endpoint_url=endpoint, region_name=SSO_REGION, aws_access_key_id="seed", aws_secret_access_key="seed"
        )

    orgs, sso, ids = client("organizations"), client("sso-admin"), client("identitystore")
    out["organization_id"] = orgs.create_organization(FeatureSet="ALL")["Organization"]["Id"]
    accounts = {ACCOUNT: "management"}
    for name in ["prod", "staging", "dev", "sandbox", "audit", "retired"]:
        status = orgs.create_account(AccountName=name, Email=f"{name}@example.com")["CreateAccountStatus"]
        accounts[status["AccountId"]] = name
    retired = [a for a, n in accounts.items() if n == "retired"][0]
    orgs.close_account(AccountId=retired)
    out["accounts"] = {n: a for a, n in accounts.items()}

    instance = sso.list_instances()["Instances"][0]
    arn, store = instance["InstanceArn"], instance["IdentityStoreId"]
    out["instance_arn"], out["identity_store_id"], out["sso_region"] = arn, store, SSO_REGION
    users = {}
    for name, disabled in [("ann@example.com", False), ("ben@example.com", False), ("cat@example.com", True), ("dan", False), ("eve@example.com", True)]:
        uid = ids.create_user(
            IdentityStoreId=store,
            UserName=name,
            DisplayName=name.split("@")[0].title(),
            Name={"GivenName": name[:3], "FamilyName": "Example"},
            Emails=[{"Value": f"{name.split('@')[0]}.work@example.com", "Type": "work", "Primary": True}],
        )["UserId"]
        users[name] = uid
        if disabled:
            DISABLED_USERS.add(uid)
    out["sso_users"] = users
    out["sso_disabled"] = sorted(n for n, u in users.items() if u in DISABLED_USERS)
    groups = {}
    for name in ["Admins", "Developers", "Nobody"]:
        groups[name] = ids.create_group(IdentityStoreId=store, DisplayName=name, Description=f"{name} group")["GroupId"]
    out["sso_groups"] = groups
    memberships = {}
    for group, members in [("Admins", ["ann@example.com", "ben@example.com"]), ("Developers", ["ben@example.com", "cat@example.com", "dan"])]:
        for m in members:
            mid = ids.create_group_membership(IdentityStoreId=store, GroupId=groups[group], MemberId={"UserId": users[m]})["MembershipId"]
            memberships[f"{group}/{m}"] = mid
    out["memberships"] = memberships

    sets = {}
    for name in ["AdministratorAccess", "ReadOnly", "Billing"]:
        ps = sso.create_permission_set(InstanceArn=arn, Name=name, Description=f"{name} access")["PermissionSet"]
        sets[name] = ps["PermissionSetArn"]
    out["permission_sets"] = sets
    assignments = [
        ("prod", "AdministratorAccess", "GROUP", "Admins"),
        ("prod", "ReadOnly", "GROUP", "Developers"),
        # ben is in Admins and is also assigned AdministratorAccess on prod directly.
        ("prod", "AdministratorAccess", "USER", "ben@example.com"),
        ("staging", "AdministratorAccess", "GROUP", "Developers"),
        ("dev", "ReadOnly", "USER", "dan"),
        ("management", "ReadOnly", "USER", "ann@example.com"),
        ("audit", "ReadOnly", "GROUP", "Nobody"),
    ]
    for account, ps, ptype, principal in assignments:
        pid = users[principal] if ptype == "USER" else groups[principal]
        sso.create_account_assignment(
            InstanceArn=arn,
            TargetId=out["accounts"][account],
            TargetType="AWS_ACCOUNT",
            PermissionSetArn=sets[ps],
            PrincipalType=ptype,
            PrincipalId=pid,
        )
    out["assignments"] = assignments

    def member_iam(account):
        c = boto3.client("iam", endpoint_url=endpoint, region_name=SSO_REGION, aws_access_key_id="seed", aws_secret_access_key="seed")
        c.meta.events.register("before-sign.iam.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
        return c

    # Each member account's OrganizationAccountAccessRole may read IAM (for cross-account
    # sync) and Organizations (for the "role in a member account" case: DescribeOrganization
    # works there, ListAccounts does not).
    member_policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ORG_READ_ACTIONS + MEMBER_PROVISION_ACTIONS, "Resource": "*"}]}
    )
    members = {}
    for name in ["prod", "staging", "dev", "sandbox", "audit"]:
        members[name] = member_iam(out["accounts"][name])
        members[name].put_role_policy(RoleName="OrganizationAccountAccessRole", PolicyName="read", PolicyDocument=member_policy)
    prod = out["accounts"]["prod"]
    out["member_role_arn"] = f"arn:aws:iam::{prod}:role/OrganizationAccountAccessRole"
    admin = members["prod"].create_user(UserName="prod-admin")["User"]
    members["prod"].create_group(GroupName="prod-ops")
    members["prod"].add_user_to_group(GroupName="prod-ops", UserName="prod-admin")
    members["prod"].create_role(RoleName="prod-deploy", AssumeRolePolicyDocument=trust(allow(admin["Arn"])))
    members["staging"].create_user(UserName="staging-dev", Path="/dev/")
    members["prod"].create_user(UserName="prod-oncall")

    # SCIM says what the identity provider says: the disabled users, and dan, whom the
    # provider has deactivated although the Identity Store still shows him enabled.
    inactive = set(DISABLED_USERS) | {users["dan"]}
    out["scim_endpoint"] = start_scim(users, inactive)
    out["scim_token"] = SCIM_TOKEN

    reader = iam.create_user(UserName="baton-org-reader")["User"]
    # The connector may assume every member account's role but sandbox's.
    sandbox_role = f"arn:aws:iam::{out['accounts']['sandbox']}:role/OrganizationAccountAccessRole"
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ORG_READ_ACTIONS + ["sts:AssumeRole"], "Resource": "*"},
        {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": sandbox_role},
    ]})
    iam.put_user_policy(UserName="baton-org-reader", PolicyName="read", PolicyDocument=policy)
    key = iam.create_access_key(UserName="baton-org-reader")["AccessKey"]
    out["reader"] = {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}
    out["users"]["baton-org-reader"] = reader["Arn"]


SCIM_TOKEN = "scim-token-0123456789abcdef0123456789abcdef"
SCIM_TENANT = "9f8e7d6c-tenant"


def start_scim(users, inactive):
    """A small SCIM 2.0 server speaking the Identity Center protocol: bearer token,
    GET /<tenant>/scim/v2/Users with startIndex/count (at most 2 per page here, so that
    paging is exercised), a ListResponse, SCIM errors."""

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlparse(self.path)
            if self.headers.get("Authorization") != f"Bearer {SCIM_TOKEN}":
                return self.reply(401, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "401", "detail": "Unauthorized"})
            if url.path != f"/{SCIM_TENANT}/scim/v2/Users":
                return self.reply(404, {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "Not found"})
            q = urllib.parse.parse_qs(url.query)
            start = int(q.get("startIndex", ["1"])[0])
            count = min(int(q.get("count", ["100"])[0]), 2)
            listed = sorted(users.items())
            page = listed[start - 1 : start - 1 + count]
            resources = [
                {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": uid, "userName": name, "active": uid not in inactive}
                for name, uid in page
            ]
            self.reply(200, {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": len(listed), "itemsPerPage": len(resources), "startIndex": start, "Resources": resources,
            })

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/{SCIM_TENANT}/scim/v2"


def start_control(endpoint, admin, out):
    """The test's window into the emulator, besides the AWS APIs themselves:
    GET /state reads what AWS holds (IAM group members, Identity Store memberships, account
    assignments) straight from moto's backends; POST /policy-user creates a user whose only
    permissions are the posted policy and returns its keys."""
    from moto.iam.models import iam_backends
    from moto.identitystore.models import identitystore_backends
    from moto.ssoadmin.models import ssoadmin_backends
    from moto.s3.models import s3_backends

    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", **admin)
    created = []

    def state():
        groups = iam_backends[ACCOUNT]["aws"].groups
        store = identitystore_backends[ACCOUNT][SSO_REGION].identity_stores.get(out.get("identity_store_id"))
        memberships = [] if store is None else [
            {"GroupId": m["GroupId"], "UserId": m["MemberId"].get("UserId"), "MembershipId": m["MembershipId"]}
            for m in store.group_memberships.values()
        ]
        return {
            "iam_groups": {g.name: sorted(u.name for u in g.users) for g in groups.values()},
            "member_iam_groups": {
                account: {g.name: sorted(u.name for u in g.users) for g in backends["aws"].groups.values()}
                for account, backends in iam_backends.items()
                if account != ACCOUNT
            },
            "sso_memberships": memberships,
            "assignments": [
                {"AccountId": a.target_id, "PermissionSetArn": a.permission_set_arn, "PrincipalType": a.principal_type, "PrincipalId": a.principal_id}
                for a in ssoadmin_backends[ACCOUNT][SSO_REGION].account_assignments
            ],
            "uploads": {
                key: len(obj.value)
                for key, obj in s3_backends[ACCOUNT]["aws"].buckets[UPLOAD_BUCKET].keys.items()
            },
        }

    class Handler(BaseHTTPRequestHandler):
        def reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply(state())

        def do_POST(self):
            policy = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
            name = f"policy-user-{len(created)}"
            created.append(name)
            iam.create_user(UserName=name)
            iam.put_user_policy(UserName=name, PolicyName="connector", PolicyDocument=policy)
            key = iam.create_access_key(UserName=name)["AccessKey"]
            self.reply({"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]})

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", choices=["iam", "org", "scale"], default="iam")
    ap.add_argument("--scale", type=float, default=1.0, help="size of the scale scenario (1.0: the benchmark's full organisation)")
    ap.add_argument("--no-auth", action="store_true", help="leave request-signature checking off")
    ap.add_argument("--max-page", type=int, default=1000, help="IAM list pages hold at most this many items")
    args = ap.parse_args()
    paginate_like_aws(args.max_page)
    identity_center_like_aws()
    sts_like_aws()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # Seeding happens with authentication off; any key works until reset-auth below.
    iam = boto3.client(
        "iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="seed", aws_secret_access_key="seed"
    )
    out = {"endpoint": endpoint, "account_id": ACCOUNT, "users": {}, "unique_ids": {}}
    if args.scenario == "iam":
        seed_iam(iam, out)
    elif args.scenario == "org":
        seed_org(endpoint, iam, out)
    else:
        seed_scale(endpoint, iam, out, args.scale)
    # An administrator the control endpoint acts as once signatures are checked.
    out["users"]["emulator-admin"] = iam.create_user(UserName="emulator-admin")["User"]["Arn"]
    iam.put_user_policy(
        UserName="emulator-admin",
        PolicyName="all",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
    )
    admin_key = iam.create_access_key(UserName="emulator-admin")["AccessKey"]
    # Where the serving host's S3 sink uploads in the tests.
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="seed", aws_secret_access_key="seed"
    ).create_bucket(Bucket=UPLOAD_BUCKET)
    out["upload_bucket"] = UPLOAD_BUCKET
    admin = {"aws_access_key_id": admin_key["AccessKeyId"], "aws_secret_access_key": admin_key["SecretAccessKey"]}
    out["admin"] = {"access_key_id": admin_key["AccessKeyId"], "secret_access_key": admin_key["SecretAccessKey"]}
    out["control"] = start_control(endpoint, admin, out)
    if not args.no_auth:
        req = urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
        )
        urllib.request.urlopen(req).read()
    print(json.dumps(out), flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
