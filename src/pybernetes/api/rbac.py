"""The rbac.authorization.k8s.io/v1 API group: roles, clusterroles, rolebindings,
clusterrolebindings.  Names are path segments (``system:...`` allowed); rules need verbs and
either resources + apiGroups or nonResourceURLs; bindings' roleRef is defaulted, checked and
immutable; subjects are checked per kind.  (Escalation checks belong to authorization.)"""

from __future__ import annotations

from typing import Any

from pybernetes.api.groupcommon import AGE
from pybernetes.api.printing import age, format_time, parse_time
from pybernetes.api.resource import ResourceDef
from pybernetes.api.strategy import Column, Strategy
from pybernetes.machinery.errors import FieldError, invalid_value, not_supported, required
from pybernetes.machinery.validation import (
    is_dns1123_subdomain,
    validate_label_selector,
    validate_path_segment_name,
)

Obj = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"


def rbac_name(name: str) -> list[str]:
    """ValidateRBACName: any path segment name."""
    return validate_path_segment_name(name)


def validate_rules(rules: Any, namespaced: bool, path: str = "rules") -> list[FieldError]:
    errs: list[FieldError] = []
    if rules is None:
        return errs
    if not isinstance(rules, list):
        return [invalid_value(path, rules, "must be a list")]
    for i, rule in enumerate(rules):
        rpath = f"{path}[{i}]"
        if not isinstance(rule, dict):
            errs.append(invalid_value(rpath, rule, "must be an object"))
            continue
        if not rule.get("verbs"):
            errs.append(required(f"{rpath}.verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            if namespaced:
                errs.append(invalid_value(f"{rpath}.nonResourceURLs", rule["nonResourceURLs"],
                                          "namespaced rules cannot apply to non-resource URLs"))
            if rule.get("apiGroups") or rule.get("resources"):
                errs.append(invalid_value(f"{rpath}.nonResourceURLs", rule["nonResourceURLs"],
                                          "rules cannot apply to both regular resources and non-resource URLs"))
            continue
        if not rule.get("apiGroups"):
            errs.append(required(f"{rpath}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            errs.append(required(f"{rpath}.resources", "resource rules must supply at least one resource"))
    return errs


def default_binding(obj: Obj) -> None:
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for subject in obj.get("subjects") or []:
        if isinstance(subject, dict) and not subject.get("apiGroup"):
            if subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""
            elif subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = GROUP


def validate_subject(subject: Any, namespaced: bool, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(subject, dict):
        return [invalid_value(path, subject, "must be an object")]
    name, kind, group = subject.get("name"), subject.get("kind"), subject.get("apiGroup", "")
    if not name:
        errs.append(required(f"{path}.name"))
    if kind == "ServiceAccount":
        if isinstance(name, str) and name:
            errs.extend(invalid_value(f"{path}.name", name, m) for m in is_dns1123_subdomain(name))
        if group:
            errs.append(not_supported(f"{path}.apiGroup", group, ("",)))
        if not namespaced and not subject.get("namespace"):
            errs.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != GROUP:
            errs.append(not_supported(f"{path}.apiGroup", group, (GROUP,)))
    else:
        errs.append(not_supported(f"{path}.kind", kind, ("ServiceAccount", "User", "Group")))
    return errs


def validate_binding(obj: Obj, namespaced: bool) -> list[FieldError]:
    errs: list[FieldError] = []
    ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
    if ref.get("apiGroup") != GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), (GROUP,)))
    kinds = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref.get("kind") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    name = ref.get("name")
    if not name:
        errs.append(required("roleRef.name"))
    elif isinstance(name, str):
        errs.extend(invalid_value("roleRef.name", name, m) for m in rbac_name(name))
    subjects = obj.get("subjects") or []
    if not isinstance(subjects, list):
        return [*errs, invalid_value("subjects", subjects, "must be a list")]
    for i, subject in enumerate(subjects):
        errs.extend(validate_subject(subject, namespaced, f"subjects[{i}]"))
    return errs


def subjects_strings(subjects: Any) -> tuple[str, str, str]:
    users, groups, service_accounts = [], [], []
    for subject in subjects or []:
        if not isinstance(subject, dict):
            continue
        kind, name = subject.get("kind"), str(subject.get("name", ""))
        if kind == "ServiceAccount":
            ns = subject.get("namespace")
            service_accounts.append(f"{ns}/{name}" if ns else name)
        elif kind == "User":
            users.append(name)
        elif kind == "Group":
            groups.append(name)
    return ", ".join(users), ", ".join(groups), ", ".join(service_accounts)


class _RbacStrategy(Strategy):
    status_fields = ()
    has_generation = False
    name_rule = staticmethod(rbac_name)


class RoleStrategy(_RbacStrategy):
    namespaced = True

    def validate(self, obj: Obj) -> list[FieldError]:
        errs = validate_rules(obj.get("rules"), self.namespaced)
        if not self.namespaced and obj.get("aggregationRule") is not None:
            rule = obj["aggregationRule"]
            selectors = rule.get("clusterRoleSelectors") if isinstance(rule, dict) else None
            if not selectors:
                errs.append(required("aggregationRule.clusterRoleSelectors",
                                     "at least one clusterRoleSelector required if aggregationRule is non-nil"))
            else:
                for i, selector in enumerate(selectors):
                    errs.extend(validate_label_selector(selector, f"aggregationRule.clusterRoleSelectors[{i}]"))
        return errs

    def columns(self) -> list[Column]:
        return [Column("Created At", "date", description="CreationTimestamp is a timestamp representing "
                       "the server time when this object was created.")]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        created = parse_time((obj.get("metadata") or {}).get("creationTimestamp"))
        return [format_time(created) if created is not None else "0001-01-01T00:00:00Z"]


class ClusterRoleStrategy(RoleStrategy):
    namespaced = False


class RoleBindingStrategy(_RbacStrategy):
    namespaced = True

    def default(self, obj: Obj) -> None:
        default_binding(obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_binding(obj, self.namespaced)

    def validate_update(self, new: Obj, old: Obj) -> list[FieldError]:
        if new.get("roleRef") != old.get("roleRef"):
            return [invalid_value("roleRef", new.get("roleRef"), "cannot change roleRef")]
        return []

    def columns(self) -> list[Column]:
        return [
            Column("Role", description="RoleRef can reference a Role in the current namespace or a "
                   "ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer "
                   "must return an error. This field is immutable."),
            AGE,
            Column("Users", priority=1, description="Users in the roleBinding"),
            Column("Groups", priority=1, description="Groups in the roleBinding"),
            Column("ServiceAccounts", priority=1, description="ServiceAccounts in the roleBinding"),
        ]

    def cells(self, obj: Obj, now: float) -> list[Any]:
        ref = obj.get("roleRef") if isinstance(obj.get("roleRef"), dict) else {}
        users, groups, service_accounts = subjects_strings(obj.get("subjects"))
        return [f"{ref.get('kind', '')}/{ref.get('name', '')}", age(obj, now), users, groups, service_accounts]


class ClusterRoleBindingStrategy(RoleBindingStrategy):
    namespaced = False


def _res(resource: str, kind: str, namespaced: bool, strategy: Strategy) -> ResourceDef:
    return ResourceDef(group=GROUP, version="v1", resource=resource, kind=kind, singular=kind.lower(),
                       namespaced=namespaced, strategy=strategy)


ROLES = _res("roles", "Role", True, RoleStrategy())
CLUSTERROLES = _res("clusterroles", "ClusterRole", False, ClusterRoleStrategy())
ROLEBINDINGS = _res("rolebindings", "RoleBinding", True, RoleBindingStrategy())
CLUSTERROLEBINDINGS = _res("clusterrolebindings", "ClusterRoleBinding", False, ClusterRoleBindingStrategy())

RESOURCES: list[ResourceDef] = [CLUSTERROLEBINDINGS, CLUSTERROLES, ROLEBINDINGS, ROLES]
