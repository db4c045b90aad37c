/* event_pack.c: see event_pack.h. Each message's fields in number order,
 * as in proto/yjlink.proto; test_event_pack holds the bytes equal to
 * protobuf-c's for random events and for every edge of each field. */
#include "event_pack.h"

#include "pbwire.h"

/* A message carrying unknown fields: protobuf-c writes them after the
 * known ones; this packer leaves such a message to it. */
#define S_PLAIN(m) ((m)->base.n_unknown_fields == 0)

static int s_time(struct yj_pbw *w, unsigned field, const Yjlink__V1__Time *t)
{
	if (!t)
		return 0;
	if (!S_PLAIN(t))
		return -1;
	uint8_t *body = yj_pbw_open(w, field);
	yj_pbw_u64(w, 1, t->has_unix_us, (uint64_t)t->unix_us);
	yj_pbw_s32(w, 2, t->has_offset_minutes, t->offset_minutes);
	yj_pbw_close(w, body);
	return 0;
}

static int s_social_worker(struct yj_pbw *w, const Yjlink__V1__SocialWorker *s)
{
	if (!s)
		return 0;
	if (!S_PLAIN(s))
		return -1;
	uint8_t *body = yj_pbw_open(w, 12);
	yj_pbw_str(w, 1, s->name);
	yj_pbw_str(w, 2, s->email);
	yj_pbw_str(w, 3, s->phone);
	yj_pbw_close(w, body);
	return 0;
}

static int s_child(struct yj_pbw *w, const Yjlink__V1__Child *c)
{
	if (!c)
		return 0;
	if (!S_PLAIN(c))
		return -1;
	uint8_t *body = yj_pbw_open(w, 4);
	yj_pbw_str(w, 1, c->person_id);
	yj_pbw_str(w, 2, c->pnc_id);
	yj_pbw_str(w, 3, c->given_name);
	yj_pbw_str(w, 4, c->family_name);
	yj_pbw_str(w, 5, c->date_of_birth);
	yj_pbw_str(w, 6, c->gender);
	yj_pbw_str(w, 7, c->ethnicity);
	yj_pbw_str(w, 8, c->home_la);
	yj_pbw_str(w, 9, c->home_postcode);
	yj_pbw_bool(w, 10, c->has_looked_after, c->looked_after);
	yj_pbw_str(w, 11, c->responsible_la);
	if (s_social_worker(w, c->social_worker))
		return -1;
	yj_pbw_u64(w, 13, c->has_apparent_age, c->apparent_age);
	yj_pbw_close(w, body);
	return 0;
}

static int s_offences(struct yj_pbw *w, size_t n, Yjlink__V1__Offence *const *v)
{
	if (n && !v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const Yjlink__V1__Offence *o = v[i];
		if (!o || !S_PLAIN(o))
			return -1;
		uint8_t *body = yj_pbw_open(w, 5);
		yj_pbw_str(w, 1, o->code);
		yj_pbw_str(w, 2, o->description);
		yj_pbw_close(w, body);
	}
	return 0;
}

static int s_markers(struct yj_pbw *w, const Yjlink__V1__Markers *m)
{
	if (!m)
		return 0;
	if (!S_PLAIN(m))
		return -1;
	uint8_t *body = yj_pbw_open(w, 6);
	yj_pbw_bool(w, 1, m->has_live_investigation, m->live_investigation);
	yj_pbw_bool(w, 2, m->has_serious_offence, m->serious_offence);
	yj_pbw_bool(w, 3, m->has_mappa, m->mappa);
	yj_pbw_bool(w, 4, m->has_court_order, m->court_order);
	yj_pbw_str(w, 5, m->officer_in_case);
	yj_pbw_close(w, body);
	return 0;
}

static int s_appropriate_adult(struct yj_pbw *w, const Yjlink__V1__AppropriateAdult *a)
{
	if (!a)
		return 0;
	if (!S_PLAIN(a))
		return -1;
	uint8_t *body = yj_pbw_open(w, 7);
	yj_pbw_str(w, 1, a->name);
	yj_pbw_str(w, 2, a->relationship);
	if (s_time(w, 3, a->called_at) || s_time(w, 4, a->arrived_at))
		return -1;
	yj_pbw_close(w, body);
	return 0;
}

static int s_custody(struct yj_pbw *w, const Yjlink__V1__Custody *c)
{
	if (!S_PLAIN(c))
		return -1;
	uint8_t *body = yj_pbw_open(w, 10);
	yj_pbw_str(w, 1, c->record_id);
	yj_pbw_str(w, 2, c->suite);
	if (s_time(w, 3, c->arrived_at))
		return -1;
	yj_pbw_str(w, 4, c->status);
	if (s_time(w, 5, c->status_at))
		return -1;
	yj_pbw_str(w, 6, c->asn);
	if (s_appropriate_adult(w, c->appropriate_adult))
		return -1;
	yj_pbw_str(w, 8, c->reason);
	yj_pbw_close(w, body);
	return 0;
}

static int s_arrest(struct yj_pbw *w, const Yjlink__V1__Arrest *a)
{
	if (!S_PLAIN(a))
		return -1;
	uint8_t *body = yj_pbw_open(w, 11);
	yj_pbw_str(w, 1, a->arrest_id);
	if (s_time(w, 2, a->arrested_at))
		return -1;
	yj_pbw_str(w, 3, a->asn);
	yj_pbw_str(w, 4, a->location_la);
	yj_pbw_bool(w, 5, a->has_summons, a->summons);
	yj_pbw_close(w, body);
	return 0;
}

static int s_interview(struct yj_pbw *w, const Yjlink__V1__Interview *iv)
{
	if (!S_PLAIN(iv))
		return -1;
	uint8_t *body = yj_pbw_open(w, 12);
	yj_pbw_str(w, 1, iv->interview_id);
	yj_pbw_str(w, 2, iv->status);
	if (s_time(w, 3, iv->at))
		return -1;
	yj_pbw_str(w, 4, iv->location);
	yj_pbw_close(w, body);
	return 0;
}

static int s_outcome(struct yj_pbw *w, const Yjlink__V1__Outcome *o)
{
	if (!S_PLAIN(o))
		return -1;
	uint8_t *body = yj_pbw_open(w, 13);
	yj_pbw_str(w, 1, o->case_ref);
	yj_pbw_str(w, 2, o->asn);
	yj_pbw_i32(w, 3, o->has_code, o->code);
	if (s_time(w, 4, o->decided_at))
		return -1;
	yj_pbw_str(w, 5, o->offence_date);
	yj_pbw_str(w, 6, o->disposal);
	yj_pbw_close(w, body);
	return 0;
}

/* The oneof: protobuf-c writes the member its case names, if not NULL. */
static int s_body(struct yj_pbw *w, const Yjlink__V1__Event *ev)
{
	switch (ev->body_case) {
	case YJLINK__V1__EVENT__BODY__NOT_SET:
		return 0;
	case YJLINK__V1__EVENT__BODY_CUSTODY:
		return ev->custody ? s_custody(w, ev->custody) : 0;
	case YJLINK__V1__EVENT__BODY_ARREST:
		return ev->arrest ? s_arrest(w, ev->arrest) : 0;
	case YJLINK__V1__EVENT__BODY_INTERVIEW:
		return ev->interview ? s_interview(w, ev->interview) : 0;
	case YJLINK__V1__EVENT__BODY_OUTCOME:
		return ev->outcome ? s_outcome(w, ev->outcome) : 0;
	default:
		return -1;
	}
}

size_t yj_event_pack(const Yjlink__V1__Event *ev, uint8_t *buf, size_t cap)
{
	if (!ev || !buf || !S_PLAIN(ev))
		return 0;
	struct yj_pbw w = { buf, buf + cap, 0 };
	yj_pbw_str(&w, 1, ev->source_id);
	yj_pbw_str(&w, 2, ev->force);
	if (s_time(&w, 3, ev->occurred_at) || s_child(&w, ev->child) ||
	    s_offences(&w, ev->n_offences, ev->offences) || s_markers(&w, ev->markers) || s_body(&w, ev))
		return 0;
	return w.over ? 0 : (size_t)(w.p - buf);
}
