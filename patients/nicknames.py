"""Common US given-name nicknames, for duplicate detection and search.

A registration clerk types "Bill" where the record says "William", "Peggy" where it
says "Margaret". Each line below is a formal name and the short and familiar forms the
department sees for it. The table is symmetric in use: two names are nickname-related
when one is listed under the other, or both are listed under the same formal name
("Bill" and "Will" are both William).

Names are compared in their normalised form (``patients.matching.normalize_name``).
"""

from __future__ import annotations

from functools import lru_cache

from patients.matching import normalize_name

# formal name: its nicknames and familiar forms
_TABLE = """
abigail: abby abbie gail
abraham: abe bram
adam: ade
albert: al bert bertie
alexander: alex al alec sandy xander lex
alexandra: alex alexa sandra sandy lexi
alfred: al alf fred freddie
allison: allie ally
alvin: al
amanda: mandy manda
andrew: andy drew
angela: angie
anthony: tony ant
arnold: arnie
arthur: art artie
barbara: barb barbie babs
benjamin: ben benny benji
bernard: bernie
beverly: bev
bradley: brad
brian: bri
calvin: cal
cameron: cam
carol: carrie
caroline: carrie carol lina
catherine: cathy cate kate katie cat
cecilia: cece celia
charles: charlie chuck chas chaz chip
charlotte: lottie charlie
christina: chris chrissy tina
christine: chris chrissy tina
christopher: chris kit topher
clarence: clare
clifford: cliff
cynthia: cindy
daniel: dan danny
david: dave davey
deborah: deb debbie debby
dennis: denny
diana: di
dolores: lola dee
donald: don donnie
dorothy: dot dottie dolly
douglas: doug
edward: ed eddie ted teddy ned
eleanor: ellie nora nell
elizabeth: liz beth betty betsy lizzie eliza libby bess lisa
emily: em emmy millie
ernest: ernie
eugene: gene
evelyn: evie
florence: flo flossie
frances: fran frannie
francis: frank fran
frank: frankie
franklin: frank
frederick: fred freddie fritz
gabriel: gabe
gabrielle: gabby
gerald: jerry gerry
gertrude: gertie trudy
gregory: greg
gwendolyn: gwen
harold: hal harry
harriet: hattie
henry: hank harry hal
herbert: herb bert
howard: howie
isabel: izzy bella
isabella: izzy bella
jacob: jake jay
jacqueline: jackie
james: jim jimmy jamie jem
jane: janie jenny
janet: jan
jean: jeanie
jeffrey: jeff
jennifer: jen jenny jenn
jeremiah: jerry jeremy
jessica: jess jessie
joan: joanie
john: jack johnny jon
jonathan: jon jonny nathan
joseph: joe joey jo
josephine: jo josie
joshua: josh
judith: judy jude
katherine: kathy kate katie kat kathie kay
kathleen: kathy kate katie
kenneth: ken kenny
kimberly: kim
kristen: kris kristy
lawrence: larry
leonard: len lenny leo
leslie: les
lillian: lil lily
louis: lou
louise: lou lulu
lucille: lucy
margaret: peggy maggie meg marge margie greta peg daisy
marilyn: lyn
martha: marty patsy mattie
martin: marty
matilda: tilly mattie
matthew: matt matty
megan: meg
melissa: mel missy lisa
michael: mike mikey mick mickey
michelle: shelly
mildred: millie
mitchell: mitch
nancy: nan
natalie: nat
nathaniel: nate nat nathan
nicholas: nick nicky
nicole: nikki nicky
norman: norm
oliver: ollie
pamela: pam
patricia: pat patty tricia trish
patrick: pat paddy rick
peter: pete
philip: phil
rachel: rae
raymond: ray
rebecca: becky becca
richard: rick dick rich richie ricky
robert: bob bobby rob robbie bert
ronald: ron ronnie
russell: russ
samantha: sam sammy
samuel: sam sammy
sandra: sandy
sarah: sally sadie
stanley: stan
stephanie: steph stevie
stephen: steve stevie
steven: steve stevie
susan: sue susie suzy
suzanne: sue susie suzy
theodore: ted teddy theo
theresa: terry tess tessie
thomas: tom tommy
timothy: tim timmy
valerie: val
veronica: ronnie vera
victoria: vicky tori
vincent: vince vinny
virginia: ginny ginger
walter: walt wally
william: bill billy will willie liam
winifred: winnie freda
zachary: zach zack
"""


def _parse() -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for line in _TABLE.strip().splitlines():
        formal, _, rest = line.partition(":")
        names = {normalize_name(formal), *(normalize_name(n) for n in rest.split())}
        for name in names:
            groups.setdefault(name, set()).update(names)
    return {name: frozenset(group - {name}) for name, group in groups.items()}


NICKNAMES: dict[str, frozenset[str]] = _parse()

# How many formal names the table covers (a check on its size, used by the tests).
FORMAL_NAMES = len(_TABLE.strip().splitlines())


@lru_cache(maxsize=4096)
def variants(name: str) -> frozenset[str]:
    """Names that may stand for ``name`` (normalised), not including itself."""
    return NICKNAMES.get(normalize_name(name), frozenset())


def are_nicknames(a: str, b: str) -> bool:
    """True when one name is a nickname or familiar form of the other (or both stand for
    the same formal name)."""
    a, b = normalize_name(a), normalize_name(b)
    if not a or not b or a == b:
        return False
    return b in NICKNAMES.get(a, ())
