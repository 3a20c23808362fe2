"""Unit tests for kubeproof.checks.node_files: a kubeadm control-plane node's files, made as strict
as CIS asks, pass every row; each row fails on a file of its role that is too open or wrongly owned;
a file that is not there is satisfied only for the "if it exists" controls, exempt when the backend
says why, and not verified otherwise; malformed facts are not verified; 2.7 compares fingerprints;
and the rows are exactly CIS 1.1.x and 4.1.x."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import JSON, PROPERTY, mangled, never_passes, outcome, protect_prefixes

from kubeproof import cis
from kubeproof.checks import node_files as nf
from kubeproof.results import Finding, NotVerified, ObjectRef

NODE = "control-plane-1"
PKI = "/etc/kubernetes/pki"


def fact(role, path, mode, uid=0, gid=0, user="root", group="root", is_dir=False, exists=True, **extra) -> dict:
    return {"role": role, "path": path, "exists": exists, "mode": mode, "uid": uid, "gid": gid, "user": user,
            "group": group, "is_dir": is_dir, **extra}


def absent(role, path, **extra) -> dict:
    return {"role": role, "path": path, "exists": False, **extra}


GOOD = [
    fact(nf.APISERVER_MANIFEST, "/etc/kubernetes/manifests/kube-apiserver.yaml", 0o600),
    fact(nf.CONTROLLER_MANAGER_MANIFEST, "/etc/kubernetes/manifests/kube-controller-manager.yaml", 0o600),
    fact(nf.SCHEDULER_MANIFEST, "/etc/kubernetes/manifests/kube-scheduler.yaml", 0o600),
    fact(nf.ETCD_MANIFEST, "/etc/kubernetes/manifests/etcd.yaml", 0o600),
    fact(nf.CNI_CONFIG, "/etc/cni/net.d/10-calico.conflist", 0o600),
    fact(nf.CNI_CONFIG, "/etc/cni/net.d/calico-kubeconfig", 0o600),
    fact(nf.ETCD_DATA_DIR, "/var/lib/etcd", 0o700, uid=998, gid=998, user="etcd", group="etcd", is_dir=True),
    fact(nf.ADMIN_KUBECONFIG, "/etc/kubernetes/admin.conf", 0o600),
    fact(nf.ADMIN_KUBECONFIG, "/etc/kubernetes/super-admin.conf", 0o600),
    fact(nf.SCHEDULER_KUBECONFIG, "/etc/kubernetes/scheduler.conf", 0o600),
    fact(nf.CONTROLLER_MANAGER_KUBECONFIG, "/etc/kubernetes/controller-manager.conf", 0o600),
    fact(nf.PKI_DIR, PKI, 0o755, is_dir=True),
    fact(nf.PKI_DIR, f"{PKI}/ca.crt", 0o644),
    fact(nf.PKI_DIR, f"{PKI}/ca.key", 0o600),
    fact(nf.PKI_DIR, f"{PKI}/etcd", 0o755, is_dir=True),
    fact(nf.PKI_CERT, f"{PKI}/ca.crt", 0o644),
    fact(nf.PKI_CERT, f"{PKI}/apiserver.crt", 0o644),
    fact(nf.PKI_KEY, f"{PKI}/ca.key", 0o600),
    fact(nf.PKI_KEY, f"{PKI}/apiserver.key", 0o400),
    fact(nf.KUBELET_SERVICE, "/usr/lib/systemd/system/kubelet.service", 0o600),
    fact(nf.KUBELET_SERVICE, "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf", 0o600),
    fact(nf.PROXY_KUBECONFIG, "/var/lib/kube-proxy/kubeconfig.conf", 0o600),
    fact(nf.KUBELET_KUBECONFIG, "/etc/kubernetes/kubelet.conf", 0o600),
    fact(nf.KUBELET_CLIENT_CA, f"{PKI}/ca.crt", 0o644),
    fact(nf.KUBELET_CONFIG, "/var/lib/kubelet/config.yaml", 0o600),
]
ROWS = {row.id: row for row in nf.ROWS}
MODE_ROWS = [row for row in nf.ROWS if isinstance(row.rule, nf.Mode)]
ROOT_ROWS = [row for row in nf.ROWS if row.rule == nf.ROOT]
IF_EXISTS = {"4.1.3", "4.1.4", "4.1.9", "4.1.10"}


def first_index(role: str) -> int:
    return next(i for i, f in enumerate(GOOD) if f["role"] == role)


def with_fact(role: str, index_in_role: int = 0, **changes) -> list[dict]:
    """GOOD with one fact of `role` changed."""
    facts = copy.deepcopy(GOOD)
    index = [i for i, f in enumerate(facts) if f["role"] == role][index_in_role]
    facts[index].update(changes)
    return facts


def without_role(role: str) -> list[dict]:
    return [f for f in copy.deepcopy(GOOD) if f["role"] != role]


def check(control_id: str, facts) -> list[Finding]:
    return nf.findings(ROWS[control_id], facts, NODE)


def only(control_id: str, facts) -> Finding:
    [finding] = check(control_id, facts)
    assert finding.controls == (control_id,)
    assert finding.object == ObjectRef("Node", NODE)
    assert finding.expected == ROWS[control_id].expected and finding.remediation
    return finding


def violating_mode(limit: int) -> int:
    # The lowest permission bit the limit does not allow.
    outside = 0o777 & ~limit
    return limit | (outside & -outside)


# -- the table ---------------------------------------------------------------------------------------
def test_rows_are_exactly_the_cis_file_controls_in_order():
    wanted = [c["id"] for c in cis.controls() if c["id"].startswith(("1.1.", "4.1."))]
    assert [row.id for row in nf.ROWS] == wanted
    assert nf.ETCD_CA_CONTROL in cis.ids()


def test_every_role_has_rows_and_every_row_a_role():
    assert {row.role for row in nf.ROWS} == set(nf.ROLES)
    assert len(set(nf.ROLES)) == len(nf.ROLES)
    assert {row.id for row in nf.ROWS if row.if_exists} == IF_EXISTS
    assert nf.row("1.1.11").rule == nf.Mode(0o700) and nf.row("1.1.12").rule == nf.ETCD_ACCOUNT
    assert [r.id for r in nf.rows_for(nf.KUBELET_CONFIG)] == ["4.1.9", "4.1.10"]


@pytest.mark.parametrize("control_id, limit", [
    ("1.1.1", 0o600), ("1.1.3", 0o600), ("1.1.5", 0o600), ("1.1.7", 0o600), ("1.1.9", 0o600), ("1.1.11", 0o700),
    ("1.1.13", 0o600), ("1.1.15", 0o600), ("1.1.17", 0o600), ("1.1.20", 0o644), ("1.1.21", 0o600),
    ("4.1.1", 0o600), ("4.1.3", 0o600), ("4.1.5", 0o600), ("4.1.7", 0o644), ("4.1.9", 0o600),
])
def test_permission_limits(control_id, limit):
    assert ROWS[control_id].rule == nf.Mode(limit)
    assert ROWS[control_id].expected == f"mode {limit:04o} or stricter"


def test_ownership_rows_want_root_except_the_etcd_data_directory():
    owners = {row.id: row.rule for row in nf.ROWS if isinstance(row.rule, nf.Owner)}
    assert owners.pop("1.1.12") == nf.ETCD_ACCOUNT
    assert set(owners.values()) == {nf.ROOT}
    assert len(owners) == 14


# -- compliant ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("row", nf.ROWS, ids=lambda r: r.id)
def test_strict_node_passes(row):
    assert nf.findings(row, GOOD, NODE) == []
    assert nf.evidence(row, GOOD)


@pytest.mark.parametrize("row", MODE_ROWS, ids=lambda r: r.id)
def test_stricter_modes_pass(row):
    for mode in (0, 0o400, row.rule.limit & 0o440, row.rule.limit):
        assert check(row.id, with_fact(row.role, mode=mode)) == [], oct(mode)


# -- each row on its violation -----------------------------------------------------------------------
@pytest.mark.parametrize("row", MODE_ROWS, ids=lambda r: r.id)
def test_too_open_mode_fails(row):
    mode = violating_mode(row.rule.limit)
    facts = with_fact(row.role, mode=mode)
    finding = only(row.id, facts)
    assert finding.path == facts[first_index(row.role)]["path"]
    assert finding.observed == f"mode {mode:04o}"


@pytest.mark.parametrize("control_id, mode", [("1.1.1", 0o644), ("1.1.1", 0o4600), ("1.1.1", 0o1600),
                                              ("1.1.11", 0o755), ("1.1.11", 0o2700), ("1.1.20", 0o664),
                                              ("1.1.20", 0o646), ("4.1.7", 0o666), ("1.1.21", 0o640)])
def test_mode_limit_counts_every_bit_outside_it(control_id, mode):
    row = ROWS[control_id]
    assert only(control_id, with_fact(row.role, mode=mode)).observed == f"mode {mode:04o}"


@pytest.mark.parametrize("row", ROOT_ROWS, ids=lambda r: r.id)
@pytest.mark.parametrize("owner, observed", [
    ({"uid": 1000, "gid": 1000, "user": None, "group": None}, "owner 1000:1000"),
    ({"uid": 1000, "gid": 1000, "user": "kube", "group": "kube"}, "owner kube:kube (1000:1000)"),
    ({"uid": 0, "gid": 27, "user": "root", "group": "sudo"}, "owner root:sudo (0:27)"),
    ({"uid": 5, "gid": 0, "user": "root", "group": "root"}, "owner root:root (5:0)"),  # the number decides
])
def test_not_root_owned_fails(row, owner, observed):
    facts = with_fact(row.role, **owner)
    finding = only(row.id, facts)
    assert (finding.path, finding.observed) == (facts[first_index(row.role)]["path"], observed)
    assert finding.expected == "owned by root:root"


def test_root_is_judged_by_number_whatever_the_names():
    assert check("1.1.2", with_fact(nf.APISERVER_MANIFEST, user=None, group=None)) == []
    assert check("1.1.2", with_fact(nf.APISERVER_MANIFEST, user="toor", group="wheel")) == []


@pytest.mark.parametrize("owner, observed", [
    ({"uid": 0, "gid": 0, "user": "root", "group": "root"}, "owner root:root (0:0)"),  # kubeadm's default
    ({"uid": 0, "gid": 0, "user": None, "group": None}, "owner 0:0"),
    ({"uid": 998, "gid": 0, "user": "etcd", "group": None}, "owner etcd:0 (998:0)"),
    ({"uid": 998, "gid": 998, "user": "etcd", "group": "docker"}, "owner etcd:docker (998:998)"),
    ({"uid": 0, "gid": 998, "user": "etcd", "group": "etcd"}, "owner etcd:etcd (0:998)"),  # 0 is root by any name
])
def test_etcd_data_directory_not_owned_by_etcd_fails(owner, observed):
    finding = only("1.1.12", with_fact(nf.ETCD_DATA_DIR, **owner))
    assert (finding.path, finding.observed, finding.expected) == ("/var/lib/etcd", observed, "owned by etcd:etcd")


def test_etcd_account_is_judged_by_name():
    assert check("1.1.12", with_fact(nf.ETCD_DATA_DIR, uid=2379, gid=2379)) == []
    with pytest.raises(NotVerified, match="no name"):
        check("1.1.12", with_fact(nf.ETCD_DATA_DIR, user=None))
    with pytest.raises(NotVerified, match="no name"):
        check("1.1.12", with_fact(nf.ETCD_DATA_DIR, user=None, group=None))


def test_each_bad_file_of_a_role_is_its_own_finding():
    facts = with_fact(nf.PKI_KEY, 1, mode=0o644)
    assert [f.path for f in check("1.1.21", facts)] == [f"{PKI}/apiserver.key"]
    facts = with_fact(nf.PKI_DIR, 2, uid=1000)
    facts[first_index(nf.PKI_DIR)]["gid"] = 1000
    assert [f.path for f in check("1.1.19", facts)] == [PKI, f"{PKI}/ca.key"]


def test_a_violation_in_one_role_fails_only_its_own_rows():
    facts = with_fact(nf.KUBELET_KUBECONFIG, mode=0o644, uid=1000)
    failing = {row.id for row in nf.ROWS if check(row.id, facts)}
    assert failing == {"4.1.5", "4.1.6"}


# -- files that are not there --------------------------------------------------------------------------
@pytest.mark.parametrize("row", nf.ROWS, ids=lambda r: r.id)
def test_role_not_reported_is_not_verified(row):
    with pytest.raises(NotVerified, match="the node's files were not visible"):
        nf.findings(row, without_role(row.role), NODE)


@pytest.mark.parametrize("row", nf.ROWS, ids=lambda r: r.id)
def test_absent_file_satisfies_only_the_if_exists_controls(row):
    facts = without_role(row.role) + [absent(row.role, "/nowhere")]
    if row.id in IF_EXISTS:
        assert nf.findings(row, facts, NODE) == []
    else:
        with pytest.raises(NotVerified, match="/nowhere does not exist"):
            nf.findings(row, facts, NODE)


@pytest.mark.parametrize("row", nf.ROWS, ids=lambda r: r.id)
def test_absent_with_a_reason_is_not_applicable(row):
    reason = "the control plane does not run from static pod manifests on this node"
    facts = without_role(row.role) + [absent(row.role, "/nowhere", absent_reason=reason)]
    if row.id in IF_EXISTS:
        assert nf.findings(row, facts, NODE) == []
    else:
        with pytest.raises(nf.NotApplicable) as exempt:
            nf.findings(row, facts, NODE)
        assert reason in exempt.value.reason and "/nowhere" in exempt.value.reason
        assert not isinstance(exempt.value, NotVerified)


def test_one_file_of_a_role_absent_with_a_reason_leaves_the_others_judged():
    reason = "kubeadm before 1.29 writes no super-admin.conf"
    facts = with_fact(nf.ADMIN_KUBECONFIG, 1, exists=False, absent_reason=reason)
    assert check("1.1.13", facts) == []
    facts = with_fact(nf.ADMIN_KUBECONFIG, 1, exists=False, absent_reason=reason)
    facts[first_index(nf.ADMIN_KUBECONFIG)]["mode"] = 0o644
    assert only("1.1.13", facts).path == "/etc/kubernetes/admin.conf"


def test_one_file_of_a_role_absent_without_a_reason_is_not_verified():
    with pytest.raises(NotVerified, match="super-admin.conf does not exist"):
        check("1.1.13", with_fact(nf.ADMIN_KUBECONFIG, 1, exists=False))


def test_a_bad_file_outranks_what_is_unknown_about_the_others():
    facts = with_fact(nf.ADMIN_KUBECONFIG, 1, exists=False)
    facts[first_index(nf.ADMIN_KUBECONFIG)]["mode"] = 0o666
    assert only("1.1.13", facts).observed == "mode 0666"
    facts = with_fact(nf.CNI_CONFIG, 1, mode="0600")
    facts[first_index(nf.CNI_CONFIG)]["mode"] = 0o644
    assert only("1.1.9", facts).observed == "mode 0644"


def test_if_exists_control_judges_the_file_when_it_exists():
    assert only("4.1.3", with_fact(nf.PROXY_KUBECONFIG, mode=0o644)).observed == "mode 0644"
    assert only("4.1.10", with_fact(nf.KUBELET_CONFIG, uid=1000)).observed == "owner root:root (1000:0)"


def test_etcd_data_directory_must_be_a_directory():
    for control_id in ("1.1.11", "1.1.12"):
        with pytest.raises(NotVerified, match="not a directory"):
            check(control_id, with_fact(nf.ETCD_DATA_DIR, is_dir=False))


# -- malformed facts ---------------------------------------------------------------------------------
@pytest.mark.parametrize("facts", [None, {}, "facts", 3, {"role": nf.APISERVER_MANIFEST}])
def test_facts_that_are_not_a_list_are_not_verified(facts):
    with pytest.raises(NotVerified):
        check("1.1.1", facts)


@pytest.mark.parametrize("damage", [["not a fact"], [{"path": "/x", "exists": True}], [{"role": 1}]])
def test_a_fact_without_a_role_spoils_every_row(damage):
    # It may be one of any role's files.
    for row in nf.ROWS:
        with pytest.raises(NotVerified):
            nf.findings(row, GOOD + damage, NODE)


@pytest.mark.parametrize("changes", [
    {"path": ""}, {"path": None}, {"exists": "yes"}, {"exists": None}, {"mode": "0600"}, {"mode": True},
    {"mode": -1}, {"mode": 0o10000}, {"mode": 384.0}, {"uid": "0"}, {"uid": -1}, {"gid": None}, {"user": ""},
    {"user": 0}, {"group": ["root"]}, {"is_dir": None}, {"is_dir": "no"}, {"absent_reason": "gone"},
    {"absent_reason": ""}, {"exists": False, "absent_reason": ""}, {"exists": False, "absent_reason": 3},
])
@pytest.mark.parametrize("control_id", ["1.1.1", "1.1.2"])
def test_malformed_fact_of_the_role_is_not_verified(control_id, changes):
    with pytest.raises(NotVerified):
        check(control_id, with_fact(nf.APISERVER_MANIFEST, **changes))


def test_malformed_facts_of_other_roles_do_not_matter():
    facts = with_fact(nf.ETCD_MANIFEST, mode="rw-------", uid=None)
    assert check("1.1.1", facts) == [] and check("1.1.2", facts) == []
    with pytest.raises(NotVerified):
        check("1.1.7", facts)


# -- evidence -------------------------------------------------------------------------------------------
def test_evidence_lists_each_file_as_stat_saw_it():
    assert nf.evidence(ROWS["1.1.12"], GOOD) == {"/var/lib/etcd": "directory, mode 0700, owner etcd:etcd (998:998)"}
    assert nf.evidence(ROWS["1.1.1"], GOOD) == {
        "/etc/kubernetes/manifests/kube-apiserver.yaml": "file, mode 0600, owner root:root (0:0)"}
    facts = with_fact(nf.ADMIN_KUBECONFIG, 1, exists=False, absent_reason="older kubeadm")
    facts[first_index(nf.ADMIN_KUBECONFIG)]["mode"] = "x"
    shown = nf.evidence(ROWS["1.1.13"], facts)
    assert shown["/etc/kubernetes/super-admin.conf"] == "absent: older kubeadm"
    [unreadable] = [value for key, value in shown.items() if key.startswith("file fact #")]
    assert unreadable.startswith("not readable:")
    assert nf.evidence(ROWS["1.1.1"], without_role(nf.APISERVER_MANIFEST)) == {}
    with pytest.raises(NotVerified):
        nf.evidence(ROWS["1.1.1"], "facts")


# -- 2.7: etcd's own CA ----------------------------------------------------------------------------------
FP_A = "ab" * 32
FP_B = "cd" * 32


def test_etcd_sharing_the_cluster_ca_fails():
    [finding] = nf.etcd_ca_findings(FP_A, FP_A, NODE)
    assert finding.controls == ("2.7",) and finding.object == ObjectRef("Node", NODE)
    assert FP_A in finding.observed and finding.remediation and finding.path == "etcd --trusted-ca-file"


def test_etcd_with_its_own_ca_passes():
    assert nf.etcd_ca_findings(FP_A, FP_B, NODE) == []


@pytest.mark.parametrize("spelling", [
    ":".join(FP_A[i:i + 2] for i in range(0, 64, 2)).upper(), f"sha256:{FP_A}", f"SHA256 Fingerprint={FP_A.upper()}",
    f"  {FP_A}\n",
])
def test_fingerprint_spellings_compare_equal(spelling):
    assert len(nf.etcd_ca_findings(spelling, FP_A, NODE)) == 1
    assert nf.etcd_ca_findings(spelling, FP_B, NODE) == []


@pytest.mark.parametrize("etcd, cluster", [(None, FP_A), (FP_A, None), (None, None), ("", FP_A), (FP_A, "ab"),
                                           (FP_A, "zz" * 32), (FP_A, 123), (FP_A[:-2], FP_A[:-2]), (["x"], FP_A)])
def test_unknown_fingerprint_is_not_verified(etcd, cluster):
    with pytest.raises(NotVerified):
        nf.etcd_ca_findings(etcd, cluster, NODE)


# -- properties -------------------------------------------------------------------------------------------
FACT_FIELDS = ("role", "path", "exists", "mode", "uid", "gid", "user", "group", "is_dir")


@PROPERTY
@given(row=st.sampled_from(nf.ROWS), facts=JSON)
def test_any_facts_give_findings_or_not_verified(row, facts):
    outcome(nf.findings, row, facts, NODE)


@PROPERTY
@given(data=st.data(), row=st.sampled_from(nf.ROWS))
def test_damaged_facts_give_findings_or_not_verified(data, row):
    facts = data.draw(mangled(GOOD))
    result = outcome(nf.findings, row, facts, NODE)
    if isinstance(result, list):
        assert all(f.controls == (row.id,) for f in result)
    try:
        assert isinstance(nf.evidence(row, facts), dict)
    except NotVerified as unknown:
        assert unknown.reason


@PROPERTY
@given(data=st.data(), row=st.sampled_from(nf.ROWS))
def test_a_bad_file_is_never_passed_whatever_else_is_damaged(data, row):
    if isinstance(row.rule, nf.Mode):
        changes = {"mode": violating_mode(row.rule.limit)}
    elif row.rule == nf.ROOT:
        changes = {"uid": 1000}
    else:
        changes = {"user": "root", "uid": 0}
    facts = with_fact(row.role, **changes)
    index = first_index(row.role)
    damaged = data.draw(mangled(facts, protected=protect_prefixes(*[(index, key) for key in FACT_FIELDS])))
    never_passes(nf.findings, row, damaged, NODE)


@PROPERTY
@given(row=st.sampled_from(MODE_ROWS), mode=st.integers(min_value=0, max_value=0o7777))
def test_mode_passes_only_within_the_limit(row, mode):
    found = check(row.id, with_fact(row.role, mode=mode))
    assert (found == []) == (mode & ~row.rule.limit == 0)


@PROPERTY
@given(row=st.sampled_from(ROOT_ROWS), uid=st.integers(0, 3), gid=st.integers(0, 3),
       names=st.sampled_from([None, "root", "etcd"]))
def test_root_ownership_passes_only_for_uid_and_gid_zero(row, uid, gid, names):
    found = check(row.id, with_fact(row.role, uid=uid, gid=gid, user=names, group=names))
    assert (found == []) == (uid == 0 and gid == 0)


@PROPERTY
@given(etcd=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
       cluster=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64))
def test_etcd_ca_fails_exactly_when_the_fingerprints_match(etcd, cluster):
    assert (nf.etcd_ca_findings(etcd, cluster, NODE) != []) == (etcd == cluster)
    assert nf.etcd_ca_findings(etcd, etcd.upper(), NODE) != []
