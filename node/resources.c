/* Proxmox's resource rows: what the config DB says of guests, nodes and
 * storage, merged with the figures each node pushes every second. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/resources.h"

/* ----------------------------------------------------------- config */

int res_parse_size(const char *text, size_t len, uint64_t *bytes)
{
	uint64_t v = 0, unit = 1;
	size_t i = 0;

	if (len == 0 || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	while (i < len && isdigit((unsigned char)text[i])) {
		if (v > (UINT64_C(1) << 60) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(text[i] - '0');
		i++;
	}
	if (i < len) {
		switch (text[i]) {
		case 'K':
			unit = UINT64_C(1) << 10;
			break;
		case 'M':
			unit = UINT64_C(1) << 20;
			break;
		case 'G':
			unit = UINT64_C(1) << 30;
			break;
		case 'T':
			unit = UINT64_C(1) << 40;
			break;
		default:
			return -EINVAL;
		}
		if (++i != len)
			return -EINVAL;
	}
	if (v > (UINT64_C(1) << 60) / unit)
		return -EINVAL;
	*bytes = v * unit;
	return 0;
}

/* A config value as text: strings as they are, integers printed. */
static bool value_text(const json_t *v, char *out, size_t size)
{
	if (json_is_string(v)) {
		if (json_string_length(v) >= size)
			return false;
		memcpy(out, json_string_value(v), json_string_length(v) + 1);
		return true;
	}
	if (json_is_integer(v)) {
		snprintf(out, size, "%lld", (long long)json_integer_value(v));
		return true;
	}
	return false;
}

static bool get_uint(const json_t *cfg, const char *key, uint64_t max,
                     uint64_t *out)
{
	char text[32], *end;
	unsigned long long v;

	if (!value_text(json_object_get(cfg, key), text, sizeof text) ||
	    !isdigit((unsigned char)text[0]))
		return false;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

/* The size= of a disk spec such as "local:100/vm-100-disk-0.raw,size=32G";
 * false for CD-ROMs and specs without one. */
static bool disk_size(const json_t *cfg, const char *key, uint64_t *bytes)
{
	char spec[1024];
	const char *p;

	if (!value_text(json_object_get(cfg, key), spec, sizeof spec))
		return false;
	if (strstr(spec, "media=cdrom") != NULL)
		return false;
	for (p = strchr(spec, ','); p != NULL; p = strchr(p + 1, ',')) {
		if (strncmp(p + 1, "size=", 5) == 0) {
			const char *v = p + 6;
			size_t n = strcspn(v, ",");

			return res_parse_size(v, n, bytes) == 0;
		}
	}
	return false;
}

int res_guest_from_config(struct res_guest *g, const char *config, size_t len,
                          struct err *e)
{
	static const char *const qemu_disks[] = {"scsi0", "virtio0", "sata0",
	                                         "ide0"};
	bool is_lxc = strcmp(g->type, "lxc") == 0;
	json_t *cfg = NULL;
	uint64_t v, sockets = 1;
	char text[RES_NAME_MAX];
	size_t i;
	int rv;

	g->name[0] = g->tags[0] = '\0';
	g->is_template = false;
	g->maxmem = UINT64_C(512) << 20;
	g->maxcpu = 1;
	g->maxdisk = 0;
	rv = json_parse_bounded(config, len, len, 4, &cfg, e);
	if (rv != 0)
		return err_wrap(e, "guest %u config", g->vmid);
	if (!json_is_object(cfg)) {
		json_decref(cfg);
		return err_set(e, -EINVAL, "guest %u config: not a JSON object",
		               g->vmid);
	}
	if (value_text(json_object_get(cfg, is_lxc ? "hostname" : "name"), text,
	               sizeof text))
		snprintf(g->name, sizeof g->name, "%s", text);
	if (value_text(json_object_get(cfg, "tags"), g->tags, sizeof g->tags)) {
		/* Proxmox accepts ',', ';' and spaces, and shows ';'. */
		for (i = 0; g->tags[i] != '\0'; i++) {
			if (g->tags[i] == ',' || g->tags[i] == ' ')
				g->tags[i] = ';';
		}
	} else {
		g->tags[0] = '\0';
	}
	if (get_uint(cfg, "template", 1, &v))
		g->is_template = v == 1;
	if (get_uint(cfg, "memory", UINT64_C(1) << 40, &v))
		g->maxmem = v << 20;
	if (get_uint(cfg, "cores", 1024, &v) && v > 0)
		g->maxcpu = (uint32_t)v;
	if (!is_lxc && get_uint(cfg, "sockets", 64, &sockets) && sockets > 0)
		g->maxcpu *= (uint32_t)sockets;
	if (is_lxc) {
		disk_size(cfg, "rootfs", &g->maxdisk);
	} else if (!(value_text(json_object_get(cfg, "bootdisk"), text,
	                        sizeof text) &&
	             disk_size(cfg, text, &g->maxdisk))) {
		for (i = 0; i < CAIRN_ARRAY_SIZE(qemu_disks); i++) {
			if (disk_size(cfg, qemu_disks[i], &g->maxdisk))
				break;
		}
	}
	json_decref(cfg);
	return 0;
}

/* ------------------------------------------------------------- rows */

int res_filter_parse(const char *text, enum res_filter *out)
{
	if (text == NULL)
		*out = RES_ALL;
	else if (strcmp(text, "vm") == 0)
		*out = RES_VM;
	else if (strcmp(text, "node") == 0)
		*out = RES_NODE;
	else if (strcmp(text, "storage") == 0)
		*out = RES_STORAGE;
	else if (strcmp(text, "sdn") == 0)
		*out = RES_SDN;
	else
		return -EINVAL;
	return 0;
}

void res_fingerprint_colons(const char *fingerprint, char out[96])
{
	const char *hex;
	size_t i, o = 0;

	out[0] = '\0';
	if (fingerprint == NULL || strncmp(fingerprint, "sha256:", 7) != 0)
		return;
	hex = fingerprint + 7;
	if (strlen(hex) != 64)
		return;
	for (i = 0; i < 64; i += 2) {
		if (!isxdigit((unsigned char)hex[i]) ||
		    !isxdigit((unsigned char)hex[i + 1])) {
			out[0] = '\0';
			return;
		}
		if (i > 0)
			out[o++] = ':';
		out[o++] = (char)toupper((unsigned char)hex[i]);
		out[o++] = (char)toupper((unsigned char)hex[i + 1]);
	}
	out[o] = '\0';
}

static const struct res_node *find_node(const struct res_input *in,
                                        const char *name)
{
	size_t i;

	for (i = 0; i < in->nnodes; i++) {
		if (strcmp(in->nodes[i].name, name) == 0)
			return &in->nodes[i];
	}
	return NULL;
}

/* Sets a key; false when out of memory (the value is stolen either way). */
static bool put(json_t *obj, const char *key, json_t *value)
{
	return value != NULL && json_object_set_new(obj, key, value) == 0;
}

static bool put_uint(json_t *obj, const char *key, uint64_t v)
{
	return put(obj, key, json_integer((json_int_t)v));
}

/* cpu as Proxmox sends it: a number, with 4 significant decimals. */
static bool put_cpu(json_t *obj, double cpu)
{
	if (!(cpu >= 0))
		cpu = 0;
	return put(obj, "cpu",
	           json_real((double)(long long)(cpu * 1e4 + 0.5) / 1e4));
}

static json_t *node_row(const struct res_node *n, bool for_nodes)
{
	const Cairn__NodeRuntime *rt = n->is_online ? n->runtime : NULL;
	json_t *row = json_object();
	char id[80];
	bool ok;

	if (row == NULL)
		return NULL;
	snprintf(id, sizeof id, "node/%s", n->name);
	ok = put(row, "id", json_string(id)) &&
	     put(row, "type", json_string("node")) &&
	     put(row, "node", json_string(n->name)) &&
	     /* Online but no figures yet: Proxmox's "unknown". */
	     put(row, "status",
	         json_string(!n->is_online ? "offline"
	                     : rt != NULL  ? "online"
	                                   : "unknown")) &&
	     put(row, "level", json_string(""));
	if (ok && for_nodes && n->fingerprint[0] != '\0')
		ok = put(row, "ssl_fingerprint", json_string(n->fingerprint));
	if (ok && rt != NULL)
		ok = put_cpu(row, rt->cpu) &&
		     put_uint(row, "maxcpu", rt->maxcpu) &&
		     put_uint(row, "mem", rt->mem) &&
		     put_uint(row, "maxmem", rt->maxmem) &&
		     put_uint(row, "disk", rt->disk) &&
		     put_uint(row, "maxdisk", rt->maxdisk) &&
		     put_uint(row, "uptime", rt->uptime);
	if (ok && !for_nodes && rt != NULL)
		ok = put_uint(row, "cgroup-mode", 2);
	if (!ok) {
		json_decref(row);
		return NULL;
	}
	return row;
}

static const Cairn__GuestRuntime *guest_runtime(const struct res_node *n,
                                                uint32_t vmid)
{
	size_t i;

	if (n == NULL || !n->is_online || n->runtime == NULL)
		return NULL;
	for (i = 0; i < n->runtime->n_guests; i++) {
		if (n->runtime->guests[i]->vmid == vmid)
			return n->runtime->guests[i];
	}
	return NULL;
}

static json_t *guest_row(const struct res_input *in, const struct res_guest *g)
{
	const struct res_node *n = find_node(in, g->node);
	const Cairn__GuestRuntime *rt = guest_runtime(n, g->vmid);
	const char *status;
	json_t *row = json_object();
	char id[32];
	bool ok;

	if (row == NULL)
		return NULL;
	if (n == NULL || !n->is_online)
		status = "unknown";
	else if (rt != NULL && rt->status != NULL)
		status = rt->status;
	else
		status = "stopped";
	snprintf(id, sizeof id, "%s/%u", g->type, g->vmid);
	ok = put(row, "id", json_string(id)) &&
	     put(row, "type", json_string(g->type)) &&
	     put_uint(row, "vmid", g->vmid) &&
	     put(row, "node", json_string(g->node)) &&
	     put(row, "name", json_string(g->name)) &&
	     put(row, "status", json_string(status)) &&
	     put_uint(row, "template", g->is_template) &&
	     put_uint(row, "maxmem",
	              rt != NULL && rt->has_maxmem ? rt->maxmem : g->maxmem) &&
	     put_uint(row, "mem", rt != NULL ? rt->mem : 0) &&
	     put_uint(row, "maxcpu", g->maxcpu) &&
	     put_cpu(row, rt != NULL ? rt->cpu : 0) &&
	     put_uint(row, "maxdisk", g->maxdisk) &&
	     put_uint(row, "disk", rt != NULL ? rt->disk : 0) &&
	     put_uint(row, "uptime", rt != NULL ? rt->uptime : 0) &&
	     put_uint(row, "netin", rt != NULL ? rt->netin : 0) &&
	     put_uint(row, "netout", rt != NULL ? rt->netout : 0) &&
	     put_uint(row, "diskread", rt != NULL ? rt->diskread : 0) &&
	     put_uint(row, "diskwrite", rt != NULL ? rt->diskwrite : 0);
	if (ok && g->tags[0] != '\0')
		ok = put(row, "tags", json_string(g->tags));
	if (ok && g->lock[0] != '\0')
		ok = put(row, "lock", json_string(g->lock));
	if (ok && g->hastate[0] != '\0')
		ok = put(row, "hastate", json_string(g->hastate));
	if (!ok) {
		json_decref(row);
		return NULL;
	}
	return row;
}

bool res_storage_on_node(const struct res_storage *s, const char *node)
{
	size_t len = strlen(node);
	const char *p = s->nodes;

	if (s->nodes[0] == '\0')
		return true;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");

		if (n == len && memcmp(p, node, len) == 0)
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

static json_t *storage_row(const struct res_storage *s,
                           const struct res_node *n)
{
	const Cairn__StorageRuntime *rt = NULL;
	json_t *row = json_object();
	char id[160];
	bool ok;
	size_t i;

	if (row == NULL)
		return NULL;
	if (n->is_online && n->runtime != NULL) {
		for (i = 0; i < n->runtime->n_storage; i++) {
			if (n->runtime->storage[i]->storage != NULL &&
			    strcmp(n->runtime->storage[i]->storage, s->id) == 0)
				rt = n->runtime->storage[i];
		}
	}
	snprintf(id, sizeof id, "storage/%s/%s", n->name, s->id);
	ok = put(row, "id", json_string(id)) &&
	     put(row, "type", json_string("storage")) &&
	     put(row, "node", json_string(n->name)) &&
	     put(row, "storage", json_string(s->id)) &&
	     put(row, "status",
	         json_string(rt != NULL && rt->active ? "available"
	                                              : "unknown")) &&
	     put(row, "content", json_string(s->content)) &&
	     put(row, "plugintype", json_string(s->type)) &&
	     put_uint(row, "shared", s->is_shared);
	if (ok && rt != NULL && rt->active)
		ok = put_uint(row, "disk", rt->used) &&
		     put_uint(row, "maxdisk", rt->total);
	if (!ok) {
		json_decref(row);
		return NULL;
	}
	return row;
}

static bool append(json_t *rows, json_t *row)
{
	return row != NULL && json_array_append_new(rows, row) == 0;
}

json_t *res_build(const struct res_input *in, enum res_filter filter)
{
	json_t *rows = json_array();
	size_t i, j;

	if (rows == NULL)
		return NULL;
	if (filter == RES_ALL || filter == RES_NODE) {
		for (i = 0; i < in->nnodes; i++) {
			if (!append(rows, node_row(&in->nodes[i], false)))
				goto fail;
		}
	}
	if (filter == RES_ALL || filter == RES_STORAGE) {
		for (i = 0; i < in->nstorage; i++) {
			if (in->storage[i].is_disabled)
				continue;
			for (j = 0; j < in->nnodes; j++) {
				if (!res_storage_on_node(&in->storage[i],
				                         in->nodes[j].name))
					continue;
				if (!append(rows, storage_row(&in->storage[i],
				                              &in->nodes[j])))
					goto fail;
			}
		}
	}
	if (filter == RES_ALL || filter == RES_VM) {
		for (i = 0; i < in->nguests; i++) {
			if (!append(rows, guest_row(in, &in->guests[i])))
				goto fail;
		}
	}
	return rows;
fail:
	json_decref(rows);
	return NULL;
}

json_t *res_build_nodes(const struct res_input *in)
{
	json_t *rows = json_array();
	size_t i;

	if (rows == NULL)
		return NULL;
	for (i = 0; i < in->nnodes; i++) {
		json_t *row = node_row(&in->nodes[i], true);

		if (row != NULL) {
			/* /nodes has no cgroup-mode, and id "node/NAME". */
			json_object_del(row, "cgroup-mode");
		}
		if (!append(rows, row)) {
			json_decref(rows);
			return NULL;
		}
	}
	return rows;
}
