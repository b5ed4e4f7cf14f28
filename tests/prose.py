"""Distinct filler text for test articles.

Since issue 15 the pipeline skips an article whose text is the same as, or
nearly the same as (MinHash similarity >= 0.7), one it already enriched. Test
articles built from one template with a number changed are near-duplicates
of each other, so tests that mean *different* articles add :func:`sentences`
of their own seed: word sequences drawn from a few hundred common words, which
share almost no three-word shingles with another seed's.
"""

from __future__ import annotations

import random

from knowledge_pipeline.enrichers.local import CONTENT_TYPE_KEYWORDS, KNOWN_VENDORS, PRIMITIVE_KEYWORDS

_RAW = (
    "about above across after again against almost alone along already also although always among amount "
    "animal another answer anyone anything appear apply area argue around arrive article artist assume "
    "attack attention audience author avoid baby back bank base beat beautiful because become bed before "
    "begin behind believe benefit best better between beyond bill billion black blood blue board body book "
    "born both box boy break bring brother budget build building business buy call camera campaign cancer "
    "capital card care career carry case catch cause cell center central century certain chair challenge "
    "chance change character charge check child choice church citizen city civil claim class clear close "
    "coach cold collection college color commercial common community compare concern condition conference "
    "consider consumer contain continue control cost could country couple course court cover create crime "
    "cultural culture cup current customer dark daughter dead deal death debate decade decide decision deep "
    "defense degree describe design despite detail determine develop difference different difficult dinner "
    "direction director discover discuss disease doctor dog door down draw dream drive drop during early east "
    "easy economic economy edge education effect effort eight either election else employee energy enjoy "
    "enough enter entire environment especially establish even evening event ever every evidence exactly "
    "example executive exist expect experience expert explain face fact factor fail fall family father fear "
    "federal feel feeling field fight figure fill film final finally financial find fine finger finish fire "
    "firm fish five floor fly focus follow food foot force foreign forget form former forward four free "
    "friend front full fund future game garden general generation girl give glass goal good government great "
    "green ground group grow growth guess gun guy hair half hand hang happen happy hard hear heart heat heavy "
    "help herself high himself history hold home hope hospital hot hotel hour house however huge human "
    "hundred husband idea identify image imagine impact improve include increase indeed indicate industry "
    "inside instead interest international interview investment island issue itself job join just keep key "
    "kid kill kind kitchen know knowledge land language large last late later laugh lawyer lay lead leader "
    "learn least leave left leg legal less letter level lie life light like likely line list listen little "
    "live local long look lose loss lot love low machine magazine main maintain major majority manage manager "
    "many market marriage material matter maybe mean measure media medical meet meeting member memory mention "
    "message method middle might military million mind minute miss mission modern moment money month morning "
    "mother mouth move movement movie much music myself name nation natural nature near nearly necessary need "
    "network never news newspaper next nice night none north note nothing notice number occur offer office "
    "officer official often oil old once only open operation opportunity option order organization other "
    "outside owner page pain painting paper parent part participant particular partner party pass past "
    "patient pattern pay peace people perform perhaps period person personal phone physical pick picture "
    "piece place plan plant play player point police policy political poor popular population position "
    "positive possible power practice prepare present president pressure pretty prevent price private "
    "probably problem process produce product production professional professor program project property "
    "protect prove provide public pull purpose push quality question quickly quite race radio raise range "
    "rate rather reach read ready real reality realize reason receive recent recently recognize record red "
    "reduce reflect region relate relationship religious remain remember remove report represent republican "
    "require resource respond response rest result return reveal rich right rise risk road rock role room "
    "rule safe same save scene school science scientist score sea season seat second section security seek "
    "sell send senior sense series serious serve service seven several shake share shoot short shot shoulder "
    "show side sign significant similar simple simply since sing single sister site situation six size skill "
    "skin small smile social society soldier somebody someone something sometimes song soon sort sound source "
    "south southern space speak special specific speech spend sport spring staff stage stand standard star "
    "start state statement station stay step still stock stop store story strategy street strong structure "
    "student study stuff style subject success successful suddenly suffer suggest summer support sure surface "
    "system table take talk task teach teacher team tell tend term test thank theory thing think third "
    "thousand threat three through throughout throw thus today together tonight total tough toward town trade "
    "traditional training travel treat treatment tree trial trip trouble true truth turn type under "
    "understand unit until upon usually value various very victim view violence visit voice vote wait walk "
    "wall want watch water weapon wear week weight west western whatever wheel whether while white whole "
    "whose wide wife will wind window wish within without woman wonder word worker world worry would write "
    "writer wrong yard yeah year young yourself"
).split()
# Words that steer the offline enricher (content type, AI primitive, vendor) are left out,
# so the filler changes nothing a test asserts about the enrichment.
_STEERING = {word for table in (CONTENT_TYPE_KEYWORDS, PRIMITIVE_KEYWORDS) for keywords in table.values()
             for keyword in keywords for word in keyword.lower().split()} | {v.lower() for v in KNOWN_VENDORS}
_WORDS = tuple(word for word in _RAW if word not in _STEERING)


def sentences(seed: int, count: int = 4) -> str:
    """``count`` sentences of 12-20 words, different for every ``seed`` (and the same for one seed)."""
    rng = random.Random(f"prose-{seed}")
    out = []
    for _ in range(count):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(12, 20))]
        out.append(" ".join(words).capitalize() + ".")
    return " ".join(out)
