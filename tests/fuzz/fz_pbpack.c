/* fz_pbpack.c: seed-corpus helper for the fuzz targets.
 *
 *   fz_pbpack JSON_DIR PB_DIR FRAMING_DIR PREFIX < lines
 *
 * Reads events as `yjlink-sim --stdout` writes them (FEED<TAB>JSON, one a
 * line) and writes, for the n-th line:
 *   JSON_DIR/PREFIX-n      feed byte + the JSON as given   (fuzz_json)
 *   PB_DIR/PREFIX-n        feed byte + the event normalised at the fuzz
 *                          clock and packed as yjlink.v1.Event, i.e. what
 *                          `yjlink-sim --protobuf` sends   (fuzz_protobuf)
 *   FRAMING_DIR/PREFIX-n   the YJL1 request, JSON or protobuf in turn
 *                          (fuzz_framing's input layout)
 * A directory given as "-" is skipped. The feed byte is the feed number - 1
 * (the targets take it modulo 4). Lines the normaliser refuses are reported
 * and get no protobuf file.
 */
#include "fuzz_common.h"

static void s_write(const char *dir, const char *prefix, unsigned n, const void *a, size_t alen, const void *b,
		    size_t blen)
{
	char path[4096];
	if (strcmp(dir, "-") == 0)
		return;
	snprintf(path, sizeof(path), "%s/%s-%03u", dir, prefix, n);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(a, 1, alen, f) != alen || (blen && fwrite(b, 1, blen, f) != blen) || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* fuzz_framing: ctl byte 4 (four frames), then three length-prefixed
 * frames and the payload. */
static void s_write_framing(const char *dir, const char *prefix, unsigned n, const char *feed, const char *ct,
			    const void *payload, size_t len)
{
	const char *fr[3] = { "YJL1", feed, ct };
	size_t cap = 1 + 3 * (2 + 64) + len, k = 0;
	uint8_t *buf = malloc(cap);
	if (!buf)
		exit(1);
	buf[k++] = 4;
	for (int i = 0; i < 3; i++) {
		size_t l = strlen(fr[i]);
		buf[k++] = (uint8_t)(l >> 8);
		buf[k++] = (uint8_t)l;
		memcpy(buf + k, fr[i], l);
		k += l;
	}
	s_write(dir, prefix, n, buf, k, payload, len);
	free(buf);
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: fz_pbpack JSON_DIR PB_DIR FRAMING_DIR PREFIX < FEED<TAB>JSON lines\n");
		return 2;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	unsigned n = 0, refused = 0;
	struct yj_arena a;
	yj_arena_init(&a, 32768);
	while ((got = getline(&line, &cap, stdin)) > 0) {
		if (line[got - 1] == '\n')
			line[--got] = '\0';
		char *tab = strchr(line, '\t');
		if (!tab)
			continue;
		enum yj_feed feed = yj_feed_from_name(line, (size_t)(tab - line));
		if (feed == YJ_FEED_NONE) {
			fprintf(stderr, "fz_pbpack: unknown feed in line %u\n", n + 1);
			return 1;
		}
		const char *json = tab + 1;
		size_t jlen = strlen(json);
		uint8_t fb = (uint8_t)(feed - 1);
		n++;
		s_write(argv[1], argv[4], n, &fb, 1, json, jlen);

		struct yj_norm_opts o = { .ref = fz_ref(), .now_us = FZ_NOW_US, .max_bytes = FZ_MAX_BYTES };
		struct yj_norm_result res;
		yj_arena_reset(&a);
		if (yj_normalise(&o, feed, YJ_CT_JSON, json, jlen, &a, &res) != 0) {
			fprintf(stderr, "fz_pbpack: line %u refused: %s %s: %s\n", n, yj_reject_code_name(res.reject.code),
				res.reject.field, res.reject.reason);
			refused++;
			s_write_framing(argv[3], argv[4], n, yj_feed_name(feed), "application/json", json, jlen);
			continue;
		}
		struct fz_bytes pb = fz_pack(res.event);
		s_write(argv[2], argv[4], n, &fb, 1, pb.p, pb.n);
		if (n % 2)
			s_write_framing(argv[3], argv[4], n, yj_feed_name(feed), "application/json", json, jlen);
		else
			s_write_framing(argv[3], argv[4], n, yj_feed_name(feed), "application/x-protobuf", pb.p, pb.n);
		free(pb.p);
	}
	free(line);
	yj_arena_free(&a);
	fprintf(stderr, "fz_pbpack: %u events, %u refused\n", n, refused);
	return refused ? 1 : 0;
}
