"""The rule copywriter's phrase tables: what a goal can ask, what an offer can give, who reads, how a brand sounds.

Each row is found by its keys, the starts of words in a brief field (a key of three letters or fewer is a whole
word), the first matching row winning; every line speaks to the reader as "you". Kept as data so a copywriter can extend them without reading the code that uses them.
"""

from __future__ import annotations

from dataclasses import dataclass

from cutroom.channels import Channel

CHANNEL_NAMES: dict[Channel, str] = {
    Channel.tiktok: "TikTok",
    Channel.instagram: "Instagram",
    Channel.youtube: "YouTube",
    Channel.linkedin: "LinkedIn",
    Channel.x: "X",
    Channel.facebook: "Facebook",
    Channel.email: "email",
}


@dataclass(frozen=True)
class GoalKind:
    """What the goal asks the reader to do, and how the campaign counts it (the PRD's KPI)."""

    name: str
    keys: tuple[str, ...]
    cta: str
    promises: tuple[str, ...]
    outcome: str  # the user story's "so that I can …"
    result: str  # what is counted
    per_usd: float  # a starting target per dollar of production budget
    noun: str  # the offer, when the goal names none


@dataclass(frozen=True)
class Category:
    """What kind of thing is offered: what the reader gains from it, and what claims about it need."""

    name: str
    keys: tuple[str, ...]
    payoffs: tuple[str, ...]
    caution: str = ""


@dataclass(frozen=True)
class Reader:
    """Who the audience is, said back to them as "you", and what the team should know about them."""

    name: str
    keys: tuple[str, ...]
    lines: tuple[str, ...]
    insight: str


@dataclass(frozen=True)
class Tone:
    """How the brand sounds: the words of `brand.voice` pick one."""

    name: str
    keys: tuple[str, ...]
    headlines: tuple[str, ...]
    lines: tuple[str, ...]


#: First match wins, so the narrower asks come before the broader ones ("free-trial sign-ups" is a trial).
KINDS = (
    GoalKind(
        "trials",
        ("trial",),
        "Start your free trial",
        (
            "Try {brand} free, on your own work.",
            "Your free trial of {brand} starts in minutes.",
            "See how {brand} fits your week.",
        ),
        "try it on my own work before I commit",
        "Free trials started",
        2.0,
        "free trial",
    ),
    GoalKind(
        "accounts",
        ("account",),
        "Open your account",
        (
            "Open your {offer} with {brand} in minutes.",
            "Your {offer} is ready when you are.",
            "{brand} keeps your {offer} simple.",
        ),
        "open one with confidence",
        "Accounts opened",
        1.0,
        "account",
    ),
    GoalKind(
        "sign-ups",
        ("sign", "register", "join", "subscri", "enrol", "member"),
        "Sign up now",
        (
            "Join {brand} in a minute.",
            "Your {brand} membership starts today.",
            "Signing up to {brand} takes you a minute.",
        ),
        "sign up without a second thought",
        "Sign-ups",
        4.0,
        "membership",
    ),
    GoalKind(
        "downloads",
        ("download", "install", "app"),
        "Get the app",
        (
            "Get the {brand} app in seconds.",
            "Your {offer} lives on your phone now.",
            "Tap once and {brand} is yours.",
        ),
        "get the app in seconds",
        "App downloads",
        6.0,
        "app",
    ),
    GoalKind(
        "sales",
        ("buy", "sale", "sell", "shop", "order", "purchas"),
        "Shop now",
        (
            "Get {brand}'s {offer} today.",
            "Treat yourself to {brand}'s {offer}.",
            "Your {offer} from {brand} is waiting.",
        ),
        "know it is worth buying",
        "Orders",
        2.0,
        "range",
    ),
    GoalKind(
        "bookings",
        ("book", "reserv", "visit", "table"),
        "Book your visit",
        (
            "Book your {offer} at {brand} in a few taps.",
            "Your {offer} at {brand} is waiting.",
            "Save your spot at {brand} today.",
        ),
        "book a visit without a second thought",
        "Bookings",
        2.0,
        "visit",
    ),
    GoalKind(
        "donations",
        ("donat", "fundrais", "appeal", "support", "give", "giving", "charit"),
        "Give today",
        (
            "Your gift goes straight to {offer}.",
            "Every gift you make helps fund {offer}.",
            "With {brand}, you help fund {offer}.",
        ),
        "give knowing where my gift goes",
        "Donations",
        1.0,
        "cause",
    ),
    GoalKind(
        "awareness",
        ("launch", "new", "introduc", "release", "aware", "announc"),
        "Discover it today",
        (
            "Say hello to {brand}'s {offer}.",
            "{brand}'s {offer} was made for days like yours.",
            "See what {brand}'s {offer} can do for you.",
        ),
        "see why it matters to me",
        "People reached",
        500.0,
        "latest idea",
    ),
)
INTEREST = GoalKind(
    "interest",
    (),
    "Learn more",
    (
        "Discover {brand}'s {offer}.",
        "{brand}'s {offer} was made with you in mind.",
        "See what {brand} can do for you.",
    ),
    "decide whether it is for me",
    "Visits to the offer page",
    10.0,
    "offer",
)

#: Software comes before money: "an invoicing platform for finance teams" is a tool, not a bank.
CATEGORIES = (
    Category(
        "work",
        ("software", "platform", "saas", "tool", "workflow", "dashboard", "automat", "invoic", "crm", "api"),
        ("Win back hours every week.", "Less admin, more of your day.", "Your team moves faster, together."),
    ),
    Category(
        "money",
        ("saving", "account", "bank", "interest", "invest", "pension", "loan", "mortgage", "credit", "insur"),
        ("Watch your savings grow.", "Make every pay cheque go further.", "Your money works while you do."),
        "Financial promotion: rates, terms and risk warnings need compliance sign-off before anything runs.",
    ),
    Category(
        "taste",
        ("coffee", "brew", "espresso", "latte", "tea", "cafe", "café", "menu", "restaurant", "baker", "food")
        + ("meal", "drink", "dinner", "lunch", "breakfast"),
        ("Your new favourite is waiting.", "Slow down and savour it.", "Treat yourself, you've earned it."),
    ),
    Category(
        "giving",
        ("donat", "charit", "appeal", "fundrais", "cause", "wells", "relief", "shelter", "hunger", "water"),
        ("You turn care into real change.", "See the difference you make.", "You help someone start again."),
        "Fundraising claims (what a gift pays for) must be accurate and approved before anything runs.",
    ),
    Category(
        "home",
        ("lamp", "home", "sleep", "morning", "light", "device", "smart", "bed", "furnitur"),
        ("Your mornings start gently.", "Your home works around you.", "Small comforts, every day, for you."),
    ),
    Category(
        "health",
        ("fitness", "gym", "health", "wellness", "yoga", "sport", "workout", "clinic"),
        ("You feel stronger every week.", "Your body will thank you.", "Move more, feel more like you."),
        "Health claims need evidence and approval before anything runs.",
    ),
    Category(
        "travel",
        ("travel", "hotel", "flight", "trip", "holiday", "getaway", "resort"),
        ("Your next escape is closer.", "You deserve a proper break.", "See more of the world, your way."),
    ),
    Category(
        "style",
        ("fashion", "style", "wear", "shoe", "dress", "beauty", "skin", "cloth", "jewel"),
        ("You, only more so.", "Your look, your rules.", "Feel good in your own skin."),
    ),
)
EVERYDAY = Category(
    "everyday",
    (),
    ("It fits the way you live.", "You get more of what matters.", "Made around you, not the other way."),
)

#: The narrowest audiences first: "finance managers at companies with 200 employees" is a team, not "busy".
READERS = (
    Reader(
        "starters",
        ("first job", "graduat", "student", "young", "gen z", "early career", "starter", "first-time"),
        (
            "You've landed your first job.",
            "Your first salary deserves a plan.",
            "You're just getting started.",
            "Your future self will thank you.",
        ),
        "Early in their careers: new to a salary, short on time and trust, and after simple first steps they "
        "can take on a phone.",
    ),
    Reader(
        "teams",
        ("team", "finance", "manager", "founder", "business", "b2b", "compan", "cfo", "operations", "smb")
        + ("startup", "agenc", "leader", "director", "head of", "procurement"),
        (
            "Your team has better things to do.",
            "You run a tight operation.",
            "You need tools your team will use.",
            "Your time is worth more than admin.",
        ),
        "They buy for a team: they need a business case, little switching effort and proof that it saves time.",
    ),
    Reader(
        "parents",
        ("parent", "famil", "mum", "mom", "dad", "kids", "children"),
        (
            "You do so much for your family.",
            "Your family comes first.",
            "You deserve a moment too.",
            "You keep everyone going.",
        ),
        "Time-poor and careful with money: they choose what makes family life easier and feels safe.",
    ),
    Reader(
        "donors",
        ("donor", "supporter", "giver", "philanthrop", "volunteer", "people who care"),
        (
            "You want your giving to count.",
            "You believe everyone deserves a chance.",
            "You know small gifts add up.",
            "You want to see real change.",
        ),
        "They give when they can see where the money goes and hear from the people it helps.",
    ),
    Reader(
        "coffee lovers",
        ("coffee", "foodie", "caffeine", "tea drinker"),
        (
            "Your mornings run on coffee.",
            "You take your coffee seriously.",
            "You know a good cup.",
            "Your commute deserves better.",
        ),
        "A daily habit: they try something new when it is on their way and worth the switch.",
    ),
    Reader(
        "locals",
        ("neighbour", "neighbor", "local", "visitor", "resident", "community", "town", "weekend"),
        (
            "You know the best spots around here.",
            "Your weekends deserve a treat.",
            "You love a local favourite.",
            "You're always welcome here.",
        ),
        "They choose places they know and hear about from neighbours; a warm welcome matters more than a deal.",
    ),
    Reader(
        "busy",
        ("busy", "professional", "executive", "commut", "worker", "employee"),
        (
            "You've got a lot on.",
            "Your time is precious.",
            "You keep a full diary.",
            "You deserve an easier day.",
        ),
        "Short of time: they decide in seconds whether something saves them effort.",
    ),
)
ANYONE = Reader(
    "anyone",
    (),
    (
        "You know what you want.",
        "You deserve better.",
        "You've been waiting for this.",
        "You're in the right place.",
    ),
    "They decide fast: the offer has to be clear in the first line.",
)

TONES = (
    Tone(
        "warm",
        (
            "warm",
            "friend",
            "cosy",
            "cozy",
            "caring",
            "kind",
            "welcom",
            "human",
            "local",
            "approachab",
            "heart",
        ),
        (
            "{brand}, made for you",
            "Hello from {brand}",
            "{brand} has you covered",
            "Come on in, it's {brand}",
            "Good things from {brand}",
        ),
        (
            "We made it with you in mind.",
            "We'll be with you every step.",
            "There's always room for you.",
            "It feels good to get this right.",
        ),
    ),
    Tone(
        "playful",
        ("playful", "fun", "witty", "cheek", "quirky", "irreveren", "cheer", "joy", "silly"),
        (
            "Psst. {brand} is here",
            "Hey you, it's {brand}",
            "Plot twist: {brand}",
            "{brand} says yes",
            "Go on, try {brand}",
        ),
        (
            "Yes, really. It's that easy.",
            "Go on, treat yourself.",
            "Tiny effort, big grin.",
            "Your inner child approves.",
        ),
    ),
    Tone(
        "bold",
        (
            "bold",
            "confiden",
            "energ",
            "bright",
            "optimis",
            "dynamic",
            "punch",
            "daring",
            "ambitio",
            "fearless",
        ),
        (
            "{brand}. Your move.",
            "Make it yours with {brand}",
            "Go further with {brand}",
            "{brand}: start now",
            "Big things start with {brand}",
        ),
        ("No waiting. No fuss.", "This is your move.", "Start strong. Stay ahead.", "Make today count."),
    ),
    Tone(
        "calm",
        ("calm", "gentle", "sooth", "mindful", "serene", "quiet", "relax", "peace", "soft"),
        (
            "{brand}, at your pace",
            "Breathe easy with {brand}",
            "{brand}, simply yours",
            "Let {brand} take it from here",
            "Quietly better: {brand}",
        ),
        (
            "Take a breath. It's simple.",
            "No rush, no noise.",
            "Everything in its place.",
            "Settle in. It's easy from here.",
        ),
    ),
    Tone(
        "premium",
        ("premium", "luxur", "refined", "elegan", "sophisticat", "exclusive", "crafted", "timeless"),
        (
            "{brand}. Nothing less.",
            "Discover {brand}",
            "{brand}, in every detail",
            "Made to last: {brand}",
            "Simply {brand}",
        ),
        (
            "Crafted with care, down to the detail.",
            "Quietly exceptional.",
            "For those who notice the difference.",
            "Made to be kept, not replaced.",
        ),
    ),
    Tone(
        "trustworthy",
        ("trust", "reliab", "clear", "honest", "expert", "professional", "precise", "credib", "transparen")
        + ("responsib", "secure", "safe", "pragmatic"),
        (
            "{brand}: clear from day one",
            "Count on {brand}",
            "{brand}, done right",
            "{brand}, straight with you",
            "Why people choose {brand}",
        ),
        (
            "No small print surprises.",
            "You stay in control, always.",
            "Straightforward, start to finish.",
            "Built to be relied on.",
        ),
    ),
)

#: Subject lines: an email headline is the line that earns the open.
SUBJECT_LINES = (
    "Something new from {brand}, for you",
    "{brand} saved you a seat",
    "A quick hello from {brand}",
)
