/* sim_names.h: the word lists yjlink-sim draws its synthetic people, offences
 * and places from. Every name here is invented for test traffic; none refers
 * to a real child. Included by tools/yjlink-sim.c only.
 *
 * Codes (local authorities) are checked against the reference tables at run
 * time, so a code that a newer table lacks is simply skipped.
 */
#ifndef YJ_SIM_NAMES_H
#define YJ_SIM_NAMES_H

#include <stddef.h>

#define SIM_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* A few names carry non-ASCII letters and apostrophes on purpose, so the
 * daemon's UTF-8 and escaping paths see real-world input. */
static const char *const sim_given_male[] = {
	"Oliver", "Jack", "Harry", "Charlie", "George", "Alfie", "Noah", "Leo",
	"Jacob", "Freddie", "Oscar", "Archie", "Thomas", "Riley", "Mason", "Kai",
	"Tyler", "Callum", "Liam", "Connor", "Jayden", "Kyle", "Reece", "Brandon",
	"Mohammed", "Ibrahim", "Yusuf", "Ayaan", "Hamza", "Zain", "Arjun", "Rohan",
	"Kwame", "Tobi", "Malachi", "Jermaine", "Dylan", "Ethan", "Lewis", "Jordan",
	"Łukasz", "Mateusz", "Darius", "Ionuț", "Seán", "Rhys", "Owain", "Cian",
};

static const char *const sim_given_female[] = {
	"Olivia", "Amelia", "Isla", "Ava", "Mia", "Ivy", "Lily", "Grace",
	"Sophie", "Ella", "Freya", "Poppy", "Evie", "Chloe", "Jessica", "Megan",
	"Courtney", "Shannon", "Kayleigh", "Jade", "Demi", "Leah", "Tia", "Keira",
	"Aisha", "Fatima", "Maryam", "Zara", "Priya", "Anaya", "Simran", "Hafsa",
	"Amara", "Chiamaka", "Precious", "Nia", "Tanisha", "Aaliyah", "Niamh", "Aoife",
	"Zoë", "Siân", "Maja", "Zuzanna", "Bethan", "Ffion", "Róisín", "Chantelle",
};

static const char *const sim_family[] = {
	"Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
	"Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green",
	"Hall", "Wood", "Jackson", "Clarke", "Patel", "Khan", "Hussain", "Ahmed",
	"Begum", "Ali", "Shah", "Singh", "Kaur", "Okafor", "Adeyemi", "Mensah",
	"Osei", "Campbell", "Thomas", "Francis", "Baptiste", "Murphy", "Kelly", "O'Brien",
	"O'Connor", "McCarthy", "Kowalski", "Nowak", "Wiśniewski", "Popescu", "Ionescu", "Price",
	"Hughes", "Edwards", "Lewis", "Harris", "Martin", "Cooper", "King", "Lee",
	"Turner", "Hill", "Ward", "Morris", "Moore", "Clark", "Baker", "Harrison",
	"Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker",
	"Price-Jones", "Bennett", "Young", "Griffiths", "Mitchell", "Lloyd-Williams", "Cook", "Carter",
};

/* Adults (social workers, appropriate adults): ASCII only, so that an email
 * address can be made from the name without transliteration. */
static const char *const sim_adult_given_f[] = {
	"Sarah", "Claire", "Rachel", "Helen", "Joanne", "Nicola", "Amanda", "Lisa",
	"Michelle", "Emma", "Kate", "Funmi", "Nadia", "Shabana", "Deborah", "Angela",
};
static const char *const sim_adult_given_m[] = {
	"David", "Paul", "Mark", "Andrew", "Steven", "Richard", "Gary", "Darren",
	"Imran", "Tariq", "Kofi", "Neil", "Simon", "Wayne", "Marcus", "Dean",
};
static const char *const sim_adult_family[] = {
	"Abbott", "Bishop", "Chambers", "Dixon", "Ellis", "Fletcher", "Gibson", "Holmes",
	"Iqbal", "Jennings", "Knight", "Lawson", "Mahmood", "Nolan", "Owusu", "Palmer",
	"Quinn", "Reid", "Sutton", "Tucker", "Underwood", "Vaughan", "Walsh", "Yates",
};

struct sim_offence {
	const char *code;         /* CJS-style offence code (synthetic, not validated by yjlinkd) */
	const char *description;
	int serious;              /* sets markers.serious_offence */
	int weight;               /* relative frequency among children */
};

static const struct sim_offence sim_offences[] = {
	{"TH68010", "Theft from a shop", 0, 14},
	{"TH68023", "Theft of a pedal cycle", 0, 4},
	{"TH68037", "Theft from the person of another", 0, 3},
	{"TH68020", "Theft from a motor vehicle", 0, 3},
	{"TH68151", "Handling stolen goods", 0, 2},
	{"TH68048", "Aggravated vehicle taking", 0, 2},
	{"CD71040", "Criminal damage to property valued under £5000", 0, 10},
	{"CJ88116", "Assault by beating", 0, 12},
	{"OF61016", "Assault occasioning actual bodily harm", 0, 6},
	{"OF61102", "Assault an emergency worker", 0, 3},
	{"PU86001", "Threatening behaviour causing fear of violence", 0, 5},
	{"PU86011", "Affray", 0, 2},
	{"MD71230", "Possess a controlled drug of Class B - cannabis", 0, 8},
	{"RT88191", "Drive without insurance", 0, 2},
	{"RT88334", "Drive otherwise than in accordance with a licence", 0, 2},
	{"CA03012", "Send an offensive or menacing message by a public network", 0, 2},
	{"CJ03507", "Possess a bladed article in a public place", 1, 3},
	{"CJ03523", "Possess an offensive weapon in a public place", 1, 2},
	{"TH68001", "Robbery", 1, 3},
	{"TH68011", "Burglary dwelling with intent to steal", 1, 2},
	{"OF61017", "Wounding with intent to do grievous bodily harm", 1, 1},
	{"MD71131", "Concerned in the supply of Class A - crack cocaine", 1, 2},
	{"SX03001", "Sexual assault on a female", 1, 1},
	{"CD71005", "Arson endangering life", 1, 1},
};

/* Home Office crime outcome codes a child's case plausibly ends with, and
 * the disposal that goes with each. Codes absent from the reference table
 * (or not valid on the decision date) are skipped at run time. */
struct sim_outcome_kind {
	int code;
	int weight;
	const char *disposal;  /* NULL: choose between youth_caution and youth_conditional_caution */
};

static const struct sim_outcome_kind sim_outcome_kinds[] = {
	{1, 26, "charge"},
	{2, 12, NULL},
	{4, 1, "other"},
	{8, 14, "community_resolution"},
	{9, 2, "nfa"},
	{10, 3, "nfa"},
	{12, 1, "nfa"},
	{15, 11, "nfa"},
	{16, 10, "nfa"},
	{17, 1, "nfa"},
	{20, 2, "other"},
	{21, 5, "outcome_21"},
	{22, 10, "outcome_22"},
};

/* Outcome codes that cannot apply to a child (routing.md, "Codes that cannot
 * apply to a child are flagged, not hidden"): police systems still send them
 * now and then, by a keying slip or for a suspect whose age was wrong. */
static const struct sim_outcome_kind sim_adult_outcomes[] = {
	{3, 4, "other"},  /* adult caution */
	{6, 2, "other"},  /* penalty notice for disorder */
	{7, 3, "other"},  /* cannabis/khat warning */
	{11, 1, "nfa"},   /* below the age of criminal responsibility */
};

/* Officers in the case of held events (markers.officer_in_case): a small
 * fixed list, so a test config can give each one an address in its
 * `officers` table. Invented collar numbers and names. */
static const char *const sim_officers[] = {
	"DC 4411 Patel", "DC 3702 Hughes", "DS 2265 Okafor", "DC 5138 Walsh",
	"DC 4876 Kowalski", "DS 1904 Reid", "DC 6020 Mensah", "DI 0817 Price",
};

/* Upper-tier authorities next to Thames Valley, where many of its children
 * from other areas live. Codes in the chosen force are filtered out. */
static const char *const sim_near_las[] = {
	"E10000014", /* Hampshire */
	"E10000030", /* Surrey */
	"E06000054", /* Wiltshire */
	"E06000030", /* Swindon */
	"E10000013", /* Gloucestershire */
	"E10000031", /* Warwickshire */
	"E06000062", /* West Northamptonshire */
	"E06000061", /* North Northamptonshire */
	"E06000056", /* Central Bedfordshire */
	"E10000015", /* Hertfordshire */
	"E09000017", /* Hillingdon */
	"E09000009", /* Ealing */
	"E09000018", /* Hounslow */
	"E09000015", /* Harrow */
};

/* Far-away authorities: looked-after children placed out of area, and
 * children drawn in by county lines. */
static const char *const sim_far_las[] = {
	"E09000033", /* Westminster */
	"E08000025", /* Birmingham */
	"E09000022", /* Lambeth */
	"E09000008", /* Croydon */
	"E08000003", /* Manchester */
	"E08000035", /* Leeds */
	"E08000012", /* Liverpool */
	"E08000021", /* Newcastle upon Tyne */
	"E06000023", /* Bristol */
	"W06000015", /* Cardiff */
	"E10000016", /* Kent */
	"E10000012", /* Essex */
};

struct sim_postcode_area {
	const char *la;    /* upper-tier GSS code */
	const char *area;  /* postcode area letters */
};

static const struct sim_postcode_area sim_postcode_areas[] = {
	{"E10000025", "OX"}, {"E06000060", "HP"}, {"E06000042", "MK"}, {"E06000038", "RG"},
	{"E06000037", "RG"}, {"E06000041", "RG"}, {"E06000036", "RG"}, {"E06000040", "SL"},
	{"E06000039", "SL"}, {"E10000014", "SO"}, {"E10000030", "GU"}, {"E06000054", "SN"},
	{"E06000030", "SN"}, {"E10000013", "GL"}, {"E10000031", "CV"}, {"E06000062", "NN"},
	{"E06000061", "NN"}, {"E06000056", "LU"}, {"E10000015", "AL"}, {"E09000017", "UB"},
	{"E09000009", "W"},  {"E09000018", "TW"}, {"E09000015", "HA"}, {"E09000033", "SW"},
	{"E08000025", "B"},  {"E09000022", "SE"}, {"E09000008", "CR"}, {"E08000003", "M"},
	{"E08000035", "LS"}, {"E08000012", "L"},  {"E08000021", "NE"}, {"E06000023", "BS"},
	{"W06000015", "CF"}, {"E10000016", "ME"}, {"E10000012", "CM"},
};

/* Postcode areas for authorities not listed above (only the format matters). */
static const char *const sim_postcode_fallback[] = {
	"DE", "NG", "LE", "PE", "NR", "IP", "CB", "YO", "HU", "DN", "S", "WF",
	"BD", "HX", "OL", "BL", "WN", "PR", "BB", "LA", "CA", "DH", "SR", "TS",
	"DL", "HG", "WS", "WV", "DY", "ST", "TF", "SY", "HR", "WR", "EX", "PL",
	"TQ", "TR", "TA", "BA", "DT", "BH", "BN", "RH", "TN", "CT", "SS", "CO",
};

/* The weights of the ethnicity codes among children in the youth justice
 * system (roughly); codes missing from the reference table are skipped. */
struct sim_weighted_code {
	const char *code;
	int weight;
};

static const struct sim_weighted_code sim_ethnicities[] = {
	{"W1", 580}, {"W2", 8}, {"W3", 10}, {"W4", 5}, {"W9", 50},
	{"M1", 40}, {"M2", 10}, {"M3", 18}, {"M9", 20},
	{"A1", 20}, {"A2", 30}, {"A3", 10}, {"A4", 5}, {"A9", 10},
	{"B1", 45}, {"B2", 40}, {"B9", 12},
	{"O1", 4}, {"O2", 8}, {"O9", 10}, {"NS", 45},
};

static const char *const sim_reasons[] = {
	"Suspicion of %s. Detention to obtain evidence by questioning.",
	"Suspicion of %s; necessity: prompt and effective investigation.",
	"Suspicion of %s, reported by a member of the public.",
	"Suspicion of %s. Detention to secure and preserve evidence.",
};

static const char *const sim_aa_family_rel_f[] = {"mother", "grandmother", "aunt", "step-mother", "older sister"};
static const char *const sim_aa_family_rel_m[] = {"father", "grandfather", "uncle", "step-father", "older brother"};
static const char *const sim_aa_care_rel[] = {
	"foster carer", "social worker", "residential care worker", "independent appropriate adult",
};

/* Relative frequency of each hour of the day (local time) for custody and
 * arrests (late afternoon and evening), and for office-hours business
 * (interview bookings, outcome decisions). */
static const double sim_hours_street[24] = {
	4, 3, 2, 1.5, 1, 1, 1.5, 2.5, 4, 5, 6, 7, 8, 8, 9, 10, 11, 11, 11, 10, 9, 8, 7, 5,
};
static const double sim_hours_office[24] = {
	0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 1, 5, 9, 10, 10, 8, 9, 10, 10, 9, 7, 3, 1, 0.6, 0.4, 0.3, 0.2,
};

#endif
