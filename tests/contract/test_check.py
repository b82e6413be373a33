#!/usr/bin/env python3
"""Unit tests of check.py (the golden-response checker) and of the golden
files: python3 tests/contract/test_check.py (exits non-zero on failure)."""

import glob
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check  # noqa: E402

CHECK = os.path.join(HERE, "check.py")
GOLDEN = os.path.join(HERE, "golden")


def golden(name):
    return check.load_golden(os.path.join(GOLDEN, name))


def mismatches(g, answer):
    check.validate(g)
    if isinstance(answer, str):
        answer = check.parse_answer(answer)
    return check.check(g, answer)


class Scalars(unittest.TestCase):
    def test_each_example_pins_its_type(self):
        for g, good, bad in [
            ("x", "", 1),
            (5, 0, 5.0),
            (5, 7, "5"),
            (0.5, 0, "0.5"),
            (0.5, 0.25, None),
            (True, False, 1),
            (None, None, 0),
        ]:
            self.assertEqual(mismatches({"a": g}, {"a": good}), [], (g, good))
            self.assertEqual(len(mismatches({"a": g}, {"a": bad})), 1,
                             (g, bad))

    def test_integer_refuses_reals_and_booleans(self):
        self.assertEqual(mismatches({"n": 1}, '{"n": 1.0}'),
                         ["$.n: expected integer, got real 1.0"])
        self.assertEqual(len(mismatches({"n": 1}, '{"n": 1e3}')), 1)
        self.assertEqual(mismatches({"n": 1}, '{"n": true}'),
                         ["$.n: expected integer, got boolean true"])

    def test_number_takes_integer_zero_and_reals(self):
        for text in ('{"cpu": 0}', '{"cpu": 0.0}', '{"cpu": 0.0123}',
                     '{"cpu": 1e-3}'):
            self.assertEqual(mismatches({"cpu": 0.5}, text), [], text)
        self.assertEqual(len(mismatches({"cpu": 0.5}, '{"cpu": "0.5"}')), 1)

    def test_the_message_names_path_expected_and_got(self):
        out = mismatches({"data": [{"vmid": 100}]},
                         '{"data": [{"vmid": 100}, {"vmid": "101"}]}')
        self.assertEqual(out, ['$.data[1].vmid: expected integer, got '
                               'string "101"'])

    def test_odd_keys_are_quoted_in_paths(self):
        out = mismatches({"cgroup-mode": 2}, '{"cgroup-mode": "2"}')
        self.assertEqual(out, ['$["cgroup-mode"]: expected integer, got '
                               'string "2"'])


class Objects(unittest.TestCase):
    def test_a_required_key_may_not_be_missing(self):
        out = mismatches({"a": 1, "b": "x"}, '{"a": 1}')
        self.assertEqual(out, ["$.b: expected string (a required key), "
                               "got absent"])

    def test_extra_keys_are_refused_by_default(self):
        out = mismatches({"a": 1}, '{"a": 1, "lock": ""}')
        self.assertEqual(out, ['$.lock: expected absent (not in the golden),'
                               ' got string ""'])

    def test_extra_true_allows_anything(self):
        self.assertEqual(mismatches({"a": 1, "$extra": True},
                                    '{"a": 1, "b": [1], "c": null}'), [])

    def test_extra_list_allows_only_those(self):
        g = {"a": 1, "$extra": ["role"]}
        self.assertEqual(mismatches(g, '{"a": 1, "role": 5}'), [])
        self.assertEqual(len(mismatches(g, '{"a": 1, "leader": 1}')), 1)

    def test_extra_object_types_the_extras_which_stay_optional(self):
        g = {"version": "9.0", "$extra": {"cairn": "0.1.0"}}
        self.assertEqual(mismatches(g, '{"version": "9.0"}'), [])
        self.assertEqual(mismatches(g, '{"version": "9.0", "cairn": "1"}'),
                         [])
        self.assertEqual(mismatches(g, '{"version": "9.0", "cairn": 1}'),
                         ["$.cairn: expected string, got integer 1"])
        self.assertEqual(len(mismatches(g, '{"version": "9.0", "x": 1}')), 1)

    def test_optional_keys_may_be_absent_but_not_mistyped(self):
        g = {"a": 1, "ip": "10.0.0.1", "$optional": ["ip"]}
        self.assertEqual(mismatches(g, '{"a": 1}'), [])
        self.assertEqual(mismatches(g, '{"a": 1, "ip": "x"}'), [])
        self.assertEqual(len(mismatches(g, '{"a": 1, "ip": 1}')), 1)

    def test_omit_unset_keys_must_be_absent_rather_than_empty(self):
        g = {"vmid": 100, "lock": "backup", "template": 1,
             "$omit_unset": ["lock", "template"]}
        self.assertEqual(mismatches(g, '{"vmid": 100}'), [])
        self.assertEqual(mismatches(g, '{"vmid": 100, "lock": "migrate",'
                                       ' "template": 1}'), [])
        self.assertEqual(
            mismatches(g, '{"vmid": 100, "lock": "", "template": 0}'),
            ['$.lock: expected the key absent when unset (Proxmox omits it),'
             ' got string ""',
             '$.template: expected the key absent when unset (Proxmox omits'
             ' it), got integer 0'])
        self.assertEqual(len(mismatches(g, '{"vmid": 100, "lock": null}')), 2)

    def test_values_makes_a_map(self):
        g = {"errors": {"$values": "msg", "$min_keys": 1}}
        self.assertEqual(mismatches(g, '{"errors": {"vmid": "bad",'
                                       ' "node": "bad"}}'), [])
        self.assertEqual(mismatches(g, '{"errors": {"vmid": 1}}'),
                         ["$.errors.vmid: expected string, got integer 1"])
        self.assertEqual(mismatches(g, '{"errors": {}}'),
                         ["$.errors: expected at least 1 keys, got 0"])

    def test_an_object_is_not_an_array(self):
        self.assertEqual(mismatches({"data": {"a": 1}}, '{"data": [1]}'),
                         ["$.data: expected object, got array [1]"])

    def test_duplicate_keys_in_the_answer_are_refused(self):
        out = mismatches({"a": 1}, '{"a": 1, "a": 2}')
        self.assertEqual(out, ["$.a: expected the key once, got it twice"])

    def test_dollar_keys_are_escaped(self):
        g = {"$$ref": "x"}
        self.assertEqual(mismatches(g, '{"$ref": "y"}'), [])
        self.assertEqual(len(mismatches(g, '{"ref": "y"}')), 2)


class Arrays(unittest.TestCase):
    def test_one_element_shapes_every_element(self):
        g = {"data": [{"vmid": 100, "name": "web"}]}
        self.assertEqual(mismatches(g, '{"data": []}'), [])
        self.assertEqual(mismatches(
            g, '{"data": [{"vmid": 1, "name": "a"}, {"vmid": 2, "name": "b"}]}'),
            [])
        out = mismatches(g, '{"data": [{"vmid": 1, "name": "a"},'
                            ' {"vmid": 2}]}')
        self.assertEqual(out, ["$.data[1].name: expected string (a required "
                               "key), got absent"])

    def test_the_empty_golden_array_takes_only_empty_arrays(self):
        self.assertEqual(mismatches({"a": []}, '{"a": []}'), [])
        self.assertEqual(mismatches({"a": []}, '{"a": [1]}'),
                         ["$.a: expected an empty array, got 1 elements"])

    ROWS = {"data": [
        {"$match": "type", "type": "qemu", "vmid": 100, "cpu": 0.5},
        {"$match": "type", "type": "node", "node": "n1", "maxcpu": 8},
    ]}

    def test_elements_are_matched_on_their_discriminator(self):
        ok = ('{"data": [{"type": "node", "node": "n1", "maxcpu": 2},'
              ' {"type": "qemu", "vmid": 100, "cpu": 0}]}')
        self.assertEqual(mismatches(self.ROWS, ok), [])
        bad = ('{"data": [{"type": "node", "node": "n1", "maxcpu": 2,'
               ' "vmid": 100}, {"type": "qemu", "vmid": "100", "cpu": 0}]}')
        self.assertEqual(mismatches(self.ROWS, bad), [
            "$.data[0].vmid: expected absent (not in the golden), got "
            "integer 100",
            '$.data[1].vmid: expected integer, got string "100"'])

    def test_an_element_matching_no_golden_element_fails(self):
        out = mismatches(self.ROWS, '{"data": [{"type": "sdn", "id": "x"}]}')
        self.assertEqual(out, ['$.data[0]: expected an element like one of: '
                               'type="qemu"; type="node", got type="sdn"'])
        out = mismatches(self.ROWS, '{"data": [{"id": "x"}, 3]}')
        self.assertEqual(out, [
            '$.data[0]: expected an element like one of: type="qemu"; '
            'type="node", got type=(absent)',
            "$.data[1]: expected object, got integer 3"])

    def test_the_first_matching_element_wins(self):
        g = {"data": [
            {"$match": ["type", "status"], "type": "qemu",
             "status": "unknown", "vmid": 1},
            {"$match": ["type", "status"], "type": "qemu",
             "status": {"$type": "string", "$example": "running"},
             "vmid": 1, "name": "x"},
        ]}
        self.assertEqual(mismatches(g, '{"data": ['
                                       '{"type": "qemu", "status": "unknown",'
                                       ' "vmid": 5},'
                                       '{"type": "qemu", "status": "paused",'
                                       ' "vmid": 6, "name": "b"}]}'), [])
        out = mismatches(g, '{"data": [{"type": "qemu", "status": "running",'
                            ' "vmid": 6}]}')
        self.assertEqual(out, ["$.data[0].name: expected string (a required "
                               "key), got absent"])

    def test_a_spec_discriminator_matches_by_conforming(self):
        g = {"data": [
            {"$match": "status", "status": "online", "cpu": 0.5},
            {"$match": "status", "status": {
                "$type": "string", "$enum": ["offline", "unknown"],
                "$example": "offline"}},
        ]}
        self.assertEqual(mismatches(g, '{"data": [{"status": "online",'
                                       ' "cpu": 0}, {"status": "unknown"}]}'),
                         [])
        self.assertEqual(len(mismatches(g, '{"data": [{"status": "online"}]}'
                                        )), 1)
        self.assertEqual(len(mismatches(g, '{"data": [{"status": "gone"}]}')),
                         1)


class Specs(unittest.TestCase):
    def test_pattern_matches_the_whole_string(self):
        g = {"data": {"$type": "string", "$pattern": "[0-9]+",
                      "$example": "100"}}
        self.assertEqual(mismatches(g, '{"data": "100"}'), [])
        self.assertEqual(mismatches(g, '{"data": "100a"}'), [
            '$.data: expected a string matching /[0-9]+/, got string "100a"'])
        self.assertEqual(mismatches(g, '{"data": 100}'), [
            "$.data: expected string, got integer 100"])

    def test_enum_is_type_exact(self):
        g = {"online": {"$type": "integer", "$enum": [0, 1], "$example": 1}}
        self.assertEqual(mismatches(g, '{"online": 0}'), [])
        self.assertEqual(mismatches(g, '{"online": 2}'), [
            "$.online: expected one of 0, 1, got integer 2"])
        self.assertEqual(mismatches(g, '{"online": true}'), [
            "$.online: expected integer, got boolean true"])
        g = {"a": {"$type": "any", "$enum": [1], "$example": 1}}
        self.assertEqual(len(mismatches(g, '{"a": true}')), 1)
        self.assertEqual(len(mismatches(g, '{"a": 1.0}')), 1)

    def test_array_length_and_items(self):
        g = {"loadavg": {"$type": "array", "$items": ["0.10"], "$min": 3,
                         "$max": 3, "$example": ["0.1", "0.2", "0.3"]}}
        self.assertEqual(mismatches(g, '{"loadavg": ["1", "2", "3"]}'), [])
        self.assertEqual(mismatches(g, '{"loadavg": ["1", "2"]}'), [
            "$.loadavg: expected at least 3 elements, got 2"])
        self.assertEqual(mismatches(g, '{"loadavg": [1.5, "2", "3", "4"]}'), [
            "$.loadavg: expected at most 3 elements, got 4",
            "$.loadavg[0]: expected string, got real 1.5"])

    def test_type_lists(self):
        g = {"mhz": {"$type": ["string", "integer"], "$example": "2100.000"}}
        self.assertEqual(mismatches(g, '{"mhz": "2100.000"}'), [])
        self.assertEqual(mismatches(g, '{"mhz": 0}'), [])
        self.assertEqual(mismatches(g, '{"mhz": 2100.5}'), [
            "$.mhz: expected string or integer, got real 2100.5"])


class BadGoldens(unittest.TestCase):
    def assertBad(self, g, words):
        with self.assertRaises(check.GoldenError) as cm:
            check.validate(g)
        self.assertIn(words, str(cm.exception))

    def test_bad_goldens_are_refused(self):
        self.assertBad({"a": 1, "$optinal": ["a"]}, "unknown directive")
        self.assertBad({"a": 1, "$optional": ["b"]}, "does not have")
        self.assertBad({"a": 1, "$optional": "a"}, "list of key names")
        self.assertBad([{"a": 1}, {"a": 2}], "needs \"$match\"")
        self.assertBad([{"$match": "t", "t": 1}, {"a": 2}], "needs")
        self.assertBad([{"$match": "t", "a": 1}], "not in the object")
        self.assertBad([{"$match": "t", "t": 1, "$optional": ["t"]}],
                       "cannot be optional")
        self.assertBad({"a": {"$type": "string"}}, "needs an $example")
        self.assertBad({"a": {"$type": "text", "$example": ""}}, "$type")
        self.assertBad({"a": {"$type": "string", "$example": 1}},
                       "does not conform")
        self.assertBad({"a": {"$type": "string", "$pattern": "[0-9]+",
                              "$example": "x"}}, "does not conform")
        self.assertBad({"a": {"$type": "integer", "$pattern": "1",
                              "$example": 1}}, "for strings")
        self.assertBad({"a": {"$type": "integer", "$min": 1,
                              "$example": 1}}, "for arrays")
        self.assertBad({"a": {"$type": "string", "$example": "",
                              "$optional": []}}, "not allowed in a typed")
        self.assertBad({"a": 1, "$extra": {"a": 1}}, "both a key")
        self.assertBad({"$extra": True, "$values": 1}, "exclude each other")
        self.assertBad({"a": {"x": 1, "$match": "x"}}, "outside an array")


class Cli(unittest.TestCase):
    def run_check(self, *args, stdin=None):
        return subprocess.run([sys.executable, CHECK] + list(args),
                              input=stdin, capture_output=True, text=True)

    def write(self, obj_or_text):
        f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        self.addCleanup(os.unlink, f.name)
        f.write(obj_or_text if isinstance(obj_or_text, str)
                else json.dumps(obj_or_text))
        f.close()
        return f.name

    def test_exit_codes_and_one_line_per_mismatch(self):
        g = self.write({"data": {"a": 1, "b": "x"}})
        r = self.run_check(g, self.write({"data": {"a": 1, "b": "y"}}))
        self.assertEqual((r.returncode, r.stdout), (0, ""))
        r = self.run_check(g, self.write({"data": {"a": "1"}}))
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.splitlines(), [
            '$.data.a: expected integer, got string "1"',
            "$.data.b: expected string (a required key), got absent"])
        r = self.run_check(g, "-", stdin='{"data": {"a": 1, "b": ""}}')
        self.assertEqual(r.returncode, 0)

    def test_an_answer_that_is_not_json_is_a_mismatch(self):
        g = self.write({"data": 1})
        for text in ("", "<html>", '{"data": NaN}', '{"data": 1} x'):
            r = self.run_check(g, self.write(text))
            self.assertEqual(r.returncode, 1, text)
            self.assertTrue(r.stdout.startswith("$: expected JSON, got"),
                            r.stdout)

    def test_a_bad_golden_or_usage_exits_2(self):
        r = self.run_check(self.write({"a": 1, "$bogus": 1}),
                           self.write({"a": 1}))
        self.assertEqual(r.returncode, 2)
        self.assertIn("unknown directive", r.stderr)
        self.assertEqual(self.run_check(self.write("{")).returncode, 2)
        self.assertEqual(self.run_check().returncode, 2)
        self.assertEqual(self.run_check(self.write({"a": 1}),
                                        "/nonexistent").returncode, 2)

    def test_example_prints_an_answer_that_conforms(self):
        path = os.path.join(GOLDEN, "cluster_status.json")
        r = self.run_check("--example", path)
        self.assertEqual(r.returncode, 0)
        ex = json.loads(r.stdout)
        self.assertEqual([row["type"] for row in ex["data"]],
                         ["cluster", "node"])
        self.assertEqual(self.run_check(path, "-", stdin=r.stdout).returncode,
                         0)


GOLDENS = sorted(glob.glob(os.path.join(GOLDEN, "*.json")))


class Goldens(unittest.TestCase):
    """The golden files: valid, self-consistent, and pinning the Proxmox
    facts clients depend on (proxmox-api.md)."""

    def test_the_expected_files_are_there(self):
        names = {os.path.basename(p) for p in GOLDENS}
        self.assertLessEqual({
            "version.json", "cluster_status.json", "cluster_resources.json",
            "cluster_nextid.json", "nodes.json", "node_status.json",
            "error_400.json", "node_qemu.json", "node_lxc.json",
            "node_storage.json"}, names)

    def test_each_golden_is_valid_sourced_and_its_example_conforms(self):
        for p in GOLDENS:
            with self.subTest(golden=os.path.basename(p)):
                g = check.load_golden(p)
                self.assertIn("$source", g)
                self.assertEqual(check.check(g, check.example_of(g)), [])

    def test_a_501_answer_fails_clearly(self):
        out = mismatches(golden("cluster_resources.json"),
                         '{"data": null, "message": "Method \'GET /cluster/'
                         'resources\' not implemented"}')
        self.assertEqual(out, [
            "$.data: expected array, got null",
            "$.message: expected absent (not in the golden), got string "
            "\"Method 'GET /cluster/resources' not implemented\""])

    def test_version(self):
        g = golden("version.json")
        ok = {"data": {"version": "9.0", "release": "9.0",
                       "repoid": "76508f0da61c", "cairn": "0.1.0"}}
        self.assertEqual(check.check(g, ok), [])
        pve = {"data": {"version": "9.0.3", "release": "9.0",
                        "repoid": "025864202ebb6109", "console": "xtermjs"}}
        self.assertEqual(check.check(g, pve), [])
        for key, value in [("version", 9.0), ("version", "cairn-0.1"),
                           ("repoid", "main"), ("cairn", 1), ("other", "x")]:
            bad = json.loads(json.dumps(ok))
            bad["data"][key] = value
            self.assertEqual(len(check.check(g, bad)), 1, (key, value))

    def test_nextid_is_a_string(self):
        g = golden("cluster_nextid.json")
        self.assertEqual(check.check(g, {"data": "100"}), [])
        self.assertEqual(check.check(g, {"data": 100}),
                         ["$.data: expected string, got integer 100"])
        self.assertEqual(len(check.check(g, {"data": "0100"})), 1)

    def test_cluster_status(self):
        g = golden("cluster_status.json")
        answer = {"data": [
            {"type": "cluster", "id": "cluster", "name": "c", "nodes": 3,
             "quorate": 1, "version": 10},
            {"type": "node", "id": "node/n1", "name": "n1", "nodeid": 1,
             "ip": "127.0.0.1", "online": 1, "local": 1, "level": "",
             "role": "voter", "leader": 1},
            {"type": "node", "id": "node/n2", "name": "n2", "nodeid": 2,
             "online": 0, "local": 0, "level": "", "role": "voter",
             "leader": 0, "skew_ms": -3},
        ]}
        self.assertEqual(check.check(g, answer), [])
        answer["data"][1]["online"] = True
        answer["data"][2]["nodeid"] = "2"
        answer["data"][0]["quorate"] = 2
        self.assertEqual(check.check(g, answer), [
            "$.data[0].quorate: expected one of 0, 1, got integer 2",
            "$.data[1].online: expected integer, got boolean true",
            '$.data[2].nodeid: expected integer, got string "2"'])

    RESOURCES = {"data": [
        {"id": "qemu/100", "type": "qemu", "vmid": 100, "node": "n1",
         "name": "web", "status": "stopped", "template": 0,
         "maxmem": 2147483648, "mem": 0, "maxcpu": 2, "cpu": 0,
         "maxdisk": 34359738368, "disk": 0, "uptime": 0, "netin": 0,
         "netout": 0, "diskread": 0, "diskwrite": 0},
        {"id": "lxc/101", "type": "lxc", "vmid": 101, "node": "n2",
         "name": "ct1", "status": "running", "template": 0,
         "maxmem": 536870912, "mem": 1, "maxcpu": 0.5, "cpu": 0.01,
         "maxdisk": 8589934592, "disk": 1, "uptime": 5, "netin": 1,
         "netout": 1, "diskread": 1, "diskwrite": 1, "tags": "a;b",
         "hastate": "started"},
        {"id": "qemu/102", "type": "qemu", "vmid": 102, "node": "n3",
         "status": "unknown"},
        {"id": "node/n1", "type": "node", "node": "n1", "status": "online",
         "cpu": 0.0, "maxcpu": 2, "mem": 1, "maxmem": 2, "disk": 1,
         "maxdisk": 2, "uptime": 100, "level": "", "cgroup-mode": 2},
        {"id": "node/n3", "type": "node", "node": "n3",
         "status": "offline"},
        {"id": "storage/n1/local", "type": "storage", "node": "n1",
         "storage": "local", "status": "available",
         "content": "iso,vztmpl,backup", "plugintype": "dir", "shared": 0,
         "disk": 1, "maxdisk": 2},
        {"id": "sdn/n1/localnetwork", "type": "sdn", "sdn": "localnetwork",
         "node": "n1", "status": "ok"},
    ]}

    def test_cluster_resources(self):
        g = golden("cluster_resources.json")
        self.assertEqual(check.check(g, self.RESOURCES), [])
        bad = json.loads(json.dumps(self.RESOURCES))
        bad["data"][0].update(vmid="100", lock="", template=False)
        del bad["data"][1]["name"]
        bad["data"][3]["maxcpu"] = 2.0
        bad["data"][5]["content"] = ["iso", "vztmpl"]
        bad["data"].append({"id": "vm/5", "type": "vm", "vmid": 5})
        self.assertEqual(check.check(g, bad), [
            '$.data[0].vmid: expected integer, got string "100"',
            "$.data[0].template: expected integer, got boolean false",
            "$.data[0].lock: expected the key absent when unset (Proxmox "
            'omits it), got string ""',
            "$.data[1].name: expected string (a required key), got absent",
            "$.data[3].maxcpu: expected integer, got real 2.0",
            '$.data[5].content: expected string, got array ["iso", '
            '"vztmpl"]',
            '$.data[7]: expected an element like one of: type="qemu",'
            'status="unknown"; type="qemu",status=(string); type="lxc",'
            'status="unknown"; type="lxc",status=(string); type="node",'
            'status="online"; type="node",status=(string in "offline", '
            '"unknown"); type="storage",status="available"; type="storage",'
            'status="unknown"; type="pool"; type="sdn"; type="network", '
            'got type="vm",status=(absent)'])

    def test_nodes(self):
        g = golden("nodes.json")
        fp = ":".join(["AB"] * 32)
        online = {"id": "node/n1", "type": "node", "node": "n1",
                  "status": "online", "cpu": 0.01, "maxcpu": 2, "mem": 1,
                  "maxmem": 2, "disk": 1, "maxdisk": 2, "uptime": 3,
                  "level": "", "ssl_fingerprint": fp}
        offline = {"id": "node/n2", "type": "node", "node": "n2",
                   "status": "offline", "ssl_fingerprint": fp}
        self.assertEqual(check.check(g, {"data": [online, offline]}), [])
        del online["uptime"]
        offline["ssl_fingerprint"] = fp.lower()
        self.assertEqual(len(check.check(g, {"data": [online, offline]})), 2)

    def test_node_status(self):
        g = golden("node_status.json")
        cairn = {"data": {
            "uptime": 7387, "loadavg": ["0.68", "0.39", "0.46"], "cpu": 0.0,
            "cpuinfo": {"model": "AMD EPYC", "cpus": 2, "cores": 2,
                        "sockets": 1},
            "memory": {"total": 4, "used": 1, "free": 3, "available": 3},
            "swap": {"total": 0, "used": 0, "free": 0},
            "rootfs": {"total": 4, "used": 1, "avail": 2, "free": 3},
            "kversion": "Linux 6.1.0 #1 SMP x86_64",
            "pveversion": "pve-manager/9.0.0/76508f0da61c"}}
        self.assertEqual(check.check(g, cairn), [])
        bad = json.loads(json.dumps(cairn))
        bad["data"]["loadavg"] = [0.68, 0.39, 0.46]
        bad["data"]["cpuinfo"]["hvm"] = 1
        bad["data"]["uptime"] = 7387.5
        del bad["data"]["memory"]["used"]
        self.assertEqual(check.check(g, bad), [
            "$.data.uptime: expected integer, got real 7387.5",
            "$.data.loadavg[0]: expected string, got real 0.68",
            "$.data.loadavg[1]: expected string, got real 0.39",
            "$.data.loadavg[2]: expected string, got real 0.46",
            "$.data.cpuinfo.hvm: expected string, got integer 1",
            "$.data.memory.used: expected integer (a required key), got "
            "absent"])

    def test_guest_and_storage_lists(self):
        self.assertEqual(check.check(golden("node_qemu.json"), {"data": []}),
                         [])
        qemu = {"vmid": 100, "status": "stopped", "name": "VM 100", "cpus": 1,
                "maxmem": 1, "maxdisk": 0, "disk": 0, "uptime": 0, "cpu": 0,
                "mem": 0, "netin": 0, "netout": 0}
        self.assertEqual(check.check(golden("node_qemu.json"),
                                     {"data": [qemu]}), [])
        qemu["type"] = "qemu"
        self.assertEqual(len(check.check(golden("node_qemu.json"),
                                         {"data": [qemu]})), 1)
        lxc = {"vmid": 101, "type": "lxc", "status": "stopped",
               "name": "CT101", "cpus": 1, "disk": 0, "maxdisk": 1, "mem": 0,
               "swap": 0, "maxmem": 1, "maxswap": 0, "uptime": 0, "cpu": 0,
               "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0}
        self.assertEqual(check.check(golden("node_lxc.json"),
                                     {"data": [lxc]}), [])
        store = {"storage": "local", "type": "dir", "content": "images",
                 "shared": 0, "enabled": 1, "active": 1, "total": 2,
                 "used": 1, "avail": 1, "used_fraction": 0.5}
        self.assertEqual(check.check(golden("node_storage.json"),
                                     {"data": [store]}), [])
        store["shared"] = "0"
        self.assertEqual(len(check.check(golden("node_storage.json"),
                                         {"data": [store]})), 1)

    def test_error_400(self):
        g = golden("error_400.json")
        pve = {"data": None, "errors": {
            "vmid": "type check ('integer') failed - got 'abc'"},
            "message": "Parameter verification failed.\n"}
        self.assertEqual(check.check(g, pve), [])
        cairn = {"data": None, "message": "Parameter verification failed.",
                 "errors": {"full": "expected a boolean"}}
        self.assertEqual(check.check(g, cairn), [])
        self.assertEqual(check.check(g, {"data": None, "message": "x"}), [
            "$.errors: expected object (a required key), got absent"])
        self.assertEqual(len(check.check(g, {"data": [], "errors": {},
                                             "message": "x"})), 2)


if __name__ == "__main__":
    unittest.main(verbosity=1)
