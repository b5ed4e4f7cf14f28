"""Newsletters shaped like the real ones, as raw RFC 5322 bytes.

Each builder writes its MIME by hand (headers, boundaries, transfer
encodings) the way the sending platform does, so the parser sees what a
mailbox holds: Substack (multipart/alternative, quoted-printable UTF-8,
a hidden preheader, a title link to the web post, an open-tracking pixel,
a footer with the unsubscribe link), beehiiv (base64 HTML, "View Online",
sponsored blocks, a footer of preferences and a postal address), Mailchimp
(RFC 2047 subject, ISO-8859-1 label on windows-1252 bytes with curly quotes
and a euro sign, "View this email in your browser", ``templateFooter``).
Each carries sentences the tests look for (``ARTICLE``) and footer phrases
they must not find (``FOOTER``).
"""

from __future__ import annotations

import base64
import quopri
from datetime import datetime, timezone
from email.utils import format_datetime

ARTICLE = {
    "substack": ("Retention curves flatten after the third week for products with a weekly habit loop.",
                 "Teams that ship onboarding checklists see activation rise by roughly a fifth."),
    "beehiiv": ("Mistral released a coding model that beats larger rivals on five benchmarks.",
                "Regulators in Brussels opened a consultation on general-purpose AI transparency."),
    "mailchimp": ("Caf\u00e9 owners told us \u201cthe espresso machine is the new point of sale\u201d.",
                  "Card fees fell to 1.2\u20ac per hundred transactions in the pilot."),
}
FOOTER = ("unsubscribe", "Unsubscribe", "548 Market Street", "You are receiving this email", "update your preferences",
          "Powered by beehiiv", "228 Park Ave", "Our mailing address", "View this email in your browser",
          "View Online", "Forwarded this email", "Preview:")
VIEW_URLS = {
    "substack": "https://lenny.substack.com/p/the-habit-loop",
    "beehiiv": "https://www.therundown.ai/p/mistral-coding-model",
    "mailchimp": "https://us1.campaign-archive.com/?u=5f1a&id=9c2e",
}
SUBJECTS = {
    "substack": "The habit loop behind weekly retention",
    "beehiiv": "Mistral's coding model beats the giants",
    "mailchimp": "Caf\u00e9 Weekly: payments at the counter",
}


def _qp(text: str, charset: str = "utf-8") -> bytes:
    return quopri.encodestring(text.encode(charset).replace(b"\n", b"\r\n"))


def _b64(text: str, charset: str = "utf-8") -> bytes:
    data = base64.encodebytes(text.encode(charset).replace(b"\n", b"\r\n"))
    return data.replace(b"\n", b"\r\n")


def _headers(fields: list[tuple[str, str]]) -> bytes:
    return b"".join(f"{name}: {value}\r\n".encode("ascii") for name, value in fields)


def _part(content_type: str, encoding: str, body: bytes) -> bytes:
    return (f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n").encode() + body


def _alternative(boundary: str, *parts: bytes) -> bytes:
    out = b"This is a multi-part message in MIME format.\r\n\r\n"
    for part in parts:
        out += f"--{boundary}\r\n".encode() + part.rstrip(b"\r\n") + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _date(when: datetime | None) -> str:
    return format_datetime(when or datetime(2025, 1, 14, 13, 5, tzinfo=timezone.utc))


def substack(*, message_id: str = "<20250114130501.3.5c1e8a9f0b2d4e6f@mg-d1.substack.com>",
             when: datetime | None = None, subject: str = SUBJECTS["substack"], extra_paragraphs: int = 4) -> bytes:
    first, second = ARTICLE["substack"]
    body = "".join(f"<p style=\"font-size:17px;line-height:26px\">Paragraph {n}: cohorts that return in week "
                   f"{n + 2} keep returning, and the curve tells you when.</p>\n" for n in range(extra_paragraphs))
    html = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{subject}</title>
<style>.footer a {{ color: #777; }}</style></head>
<body style="margin:0">
<div class="preview" style="display:none;font-size:1px;color:#fff;max-height:0;overflow:hidden">Preview: why week three
decides everything &#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;&#847;&zwnj;&nbsp;</div>
<table role="presentation" width="100%"><tr><td align="center">
<table class="email-body-container" width="550"><tr><td>
<p class="forwarded" style="font-size:13px">Forwarded this email? <a href="https://lenny.substack.com/subscribe?utm_source=email">Subscribe here</a> for more</p>
<h1 class="post-title"><a href="https://lenny.substack.com/p/the-habit-loop?utm_source=substack&amp;utm_medium=email&amp;utm_campaign=email-post-title">{subject}</a></h1>
<h3 class="subtitle">What a weekly loop does to your cohorts</h3>
<table class="email-ufi-2-top"><tr><td><a href="https://substack.com/app-link/post?publication_id=10845&amp;post_id=154321&amp;utm_source=post-email-title&amp;isFreemail=true">READ IN APP</a></td></tr></table>
<div class="body markup">
<p>{first}</p>
{body}<h2>What to do on Monday</h2>
<p>{second}</p>
<p>Until next week, Lenny</p>
</div>
</td></tr>
<tr><td class="footer" style="font-size:12px;color:#777">
<p>&#169; 2025 Lenny Rachitsky<br>548 Market Street PMB 72296, San Francisco, CA 94104<br>
<a href="https://lenny.substack.com/action/disable_email?token=eyJ1c2VyX2lkIjo1">Unsubscribe</a></p>
<p><a href="https://substack.com/app/app-store-redirect">Get the app</a> <a href="https://substack.com/signup">Start writing</a></p>
</td></tr></table>
</td></tr></table>
<img src="https://eotrx.substackcdn.com/open?token=eyJtIjoiMTU0MzIxIn0&amp;type=post-email" width="1" height="1" alt="" border="0" style="height:1px !important;width:1px !important">
</body></html>
"""
    plain = (f"{subject}\n\nView this post on the web at https://lenny.substack.com/p/the-habit-loop\n\n{first}\n\n"
             f"{second}\n\nUnsubscribe https://lenny.substack.com/action/disable_email?token=eyJ1c2VyX2lkIjo1\n")
    boundary = "--==_mimepart_6786a1c5e1a3b_2b0a8c2f1d"
    headers = _headers([
        ("Return-Path", "<bounce-mc.us12_10845.154321-reader=example.org@mail201.substack.com>"),
        ("From", '"Lenny\'s Newsletter" <lenny@substack.com>'),
        ("Reply-To", '"Lenny\'s Newsletter" <reply+2k3j4h@substack.com>'),
        ("To", "reader@example.org"),
        ("Subject", subject),
        ("Date", _date(when)),
        ("Message-ID", message_id),
        ("List-Id", "<lenny.substack.com>"),
        ("List-Unsubscribe", "<https://lenny.substack.com/action/disable_email?token=eyJ1c2VyX2lkIjo1>, "
                             "<mailto:unsubscribe@substack.com>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"; charset=UTF-8'),
    ])
    return headers + b"\r\n" + _alternative(
        boundary,
        _part('text/plain; charset="UTF-8"', "quoted-printable", _qp(plain)),
        _part('text/html; charset="UTF-8"', "quoted-printable", _qp(html)),
    )


def beehiiv(*, message_id: str = "<0100019464f3c2aa-8e1b2c3d-beehiiv@email.amazonses.com>",
            when: datetime | None = None) -> bytes:
    first, second = ARTICLE["beehiiv"]
    subject = SUBJECTS["beehiiv"]
    html = f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"/>
<title>{subject}</title></head>
<body>
<span class="preheader" style="display:none !important;mso-hide:all">PLUS: Brussels wants to hear from you &#8199;&#65279;&#847;</span>
<table class="container" width="100%"><tr><td>
<table width="100%"><tr><td align="right" style="font-size:12px"><a href="https://www.therundown.ai/p/mistral-coding-model?_bhlid=1f2e3d&amp;utm_source=www.therundown.ai&amp;utm_medium=newsletter">View Online</a></td></tr>
<tr><td align="right" style="font-size:12px"><a href="https://www.therundown.ai/subscribe?ref=abc">Sign Up</a> | <a href="https://www.therundown.ai/advertise">Advertise</a></td></tr></table>
<table width="100%"><tr><td class="dd" style="padding:20px">
<p>Good morning, AI enthusiasts.</p>
<h2>LATEST DEVELOPMENTS</h2>
<h3>MISTRAL</h3>
<p>{first} The model is released under an open licence and runs on a single GPU.</p>
<p>Why it matters: smaller open models keep closing the gap with the largest closed ones, which changes the cost of shipping coding assistants.</p>
<h3>EU AI ACT</h3>
<p>{second} Comments are due within eight weeks.</p>
<p>Why it matters: providers will have to document training data at a level many have avoided so far.</p>
</td></tr></table>
<table width="100%"><tr><td class="footer" id="footer" style="font-size:11px;color:#999">
<p>What did you think of today's email?</p>
<p>Update your email preferences or <a href="https://www.therundown.ai/subscribe/bc3f/manage?last_resource_guid=x">unsubscribe here</a></p>
<p>&#169; 2025 The Rundown AI, Inc.<br/>228 Park Ave S, #29976, New York, New York 10003, United States</p>
<p><a href="https://www.beehiiv.com/?utm_campaign=footer">Powered by beehiiv</a> <a href="https://www.beehiiv.com/tou">Terms of Service</a></p>
</td></tr></table>
</td></tr></table>
<img alt="" src="https://link.mail.beehiiv.com/ss/o/u001.aBcD1234/4bn/open" width="1" height="1" style="display:block;height:1px;width:1px"/>
</body></html>
"""
    plain = f"View Online: https://www.therundown.ai/p/mistral-coding-model\n\n{first}\n\n{second}\n"
    boundary = "b1_8f2d4a1c0e6b9a7d3c5e"
    headers = _headers([
        ("From", '"The Rundown AI" <news@daily.therundown.ai>'),
        ("To", "reader@example.org"),
        ("Subject", "=?UTF-8?B?" + base64.b64encode(subject.encode()).decode() + "?="),
        ("Date", _date(when)),
        ("Message-ID", message_id),
        ("List-Unsubscribe", "<https://www.therundown.ai/subscribe/bc3f/unsubscribe>"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ])
    return headers + b"\r\n" + _alternative(
        boundary,
        _part("text/plain; charset=utf-8", "base64", _b64(plain)),
        _part("text/html; charset=utf-8", "base64", _b64(html)),
    )


def mailchimp(*, message_id: str = "<b7c1d0e2f3a4.9c2e5f1a.20250114130500@mail124.suw13.mcsv.net>",
              when: datetime | None = None) -> bytes:
    first, second = ARTICLE["mailchimp"]
    html = f"""<!doctype html>
<html><head><meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">
<title>Caf\u00e9 Weekly</title></head>
<body>
<span class="mcnPreviewText" style="display:none; font-size:0px; line-height:0px; max-height:0px; max-width:0px; opacity:0; overflow:hidden; visibility:hidden; mso-hide:all;">This week: payments at the counter</span>
<center><table id="bodyTable" width="100%"><tr><td id="bodyCell">
<table id="templatePreheader"><tr><td class="mcnTextContent" style="font-size:11px">
<a href="https://us1.campaign-archive.com/?u=5f1a&amp;id=9c2e" target="_blank">View this email in your browser</a>
</td></tr></table>
<table id="templateBody"><tr><td class="mcnTextContent">
<h1>Payments at the counter</h1>
<p>{first}</p>
<p>We visited twelve caf\u00e9s in Lyon and Lille. Nine had replaced their till with a tablet in the last year, and \u2018tap to pay\u2019 was the default everywhere.</p>
<p>{second}</p>
<p>\u2014 The Caf\u00e9 Weekly team</p>
</td></tr></table>
<table id="templateFooter"><tr><td class="mcnTextContent" style="font-size:12px">
<em>Copyright \u00a9 2025 Caf\u00e9 Weekly, All rights reserved.</em><br>
You are receiving this email because you opted in via our website.<br><br>
<strong>Our mailing address is:</strong><br>Caf\u00e9 Weekly, 12 rue de la Paix, Paris 75002, France<br><br>
Want to change how you receive these emails?<br>
You can <a href="https://acme.us1.list-manage.com/profile?u=5f1a&amp;id=77&amp;e=abc">update your preferences</a> or <a href="https://acme.us1.list-manage.com/unsubscribe?u=5f1a&amp;id=77&amp;e=abc">unsubscribe from this list</a>.
</td></tr></table>
</td></tr></table></center>
<img src="https://acme.us1.list-manage.com/track/open.php?u=5f1a&amp;id=9c2e&amp;e=abc" height="1" width="1">
</body></html>
"""
    plain = f"** Payments at the counter\n\n{first}\n\n{second}\n"
    boundary = "_----------=_MCPart_1234567890"
    subject = "=?iso-8859-1?Q?Caf=E9_Weekly:_payments_at_the_counter?="
    headers = _headers([
        ("From", "=?iso-8859-1?Q?Caf=E9?= Weekly <news@cafeweekly.example>"),
        ("To", "reader@example.org"),
        ("Subject", subject),
        ("Date", _date(when)),
        ("Message-ID", message_id),
        ("List-Unsubscribe", "<https://acme.us1.list-manage.com/unsubscribe?u=5f1a&id=77&e=abc&c=9c2e>"),
        ("X-Mailer", "MailChimp Mailer - **CID9c2e5f1a**"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ])
    # The label says ISO-8859-1, the bytes are windows-1252 (curly quotes, euro sign), as in many real mails.
    return headers + b"\r\n" + _alternative(
        boundary,
        _part('text/plain; charset="iso-8859-1"', "quoted-printable", _qp(plain, "cp1252")),
        _part('text/html; charset="iso-8859-1"', "quoted-printable", _qp(html, "cp1252")),
    )


def plain_text(*, message_id: str | None = "<plain-1@list.example>", charset: str = "iso-8859-2",
               text: str = "Dzie\u0144 dobry! \u0141\u00f3d\u017a hosts the robotics fair on Friday.\n\n"
                            "Read the schedule at <https://fair.example/schedule>.\n\n-- \nThe Fair Team\n",
               subject: str = "=?iso-8859-2?Q?=A3=F3d=BC_robotics_fair?=", when: datetime | None = None,
               sender: str = "Fair News <news@fair.example>") -> bytes:
    fields = [("From", sender), ("Subject", subject), ("Date", _date(when))]
    if message_id:
        fields.append(("Message-ID", message_id))
    fields += [("MIME-Version", "1.0"), ("Content-Type", f"text/plain; charset={charset}; format=flowed"),
               ("Content-Transfer-Encoding", "base64")]
    return _headers(fields) + b"\r\n" + _b64(text, charset)


def with_attachment(size: int, *, message_id: str = "<big-1@reports.example>", when: datetime | None = None) -> bytes:
    """A short newsletter carrying a PDF attachment of ``size`` bytes (base64 in the message)."""
    boundary = "mixed-boundary-42"
    html = "<html><body><p>The annual report is attached. Highlights inside.</p></body></html>"
    attachment = base64.encodebytes(b"%PDF-1.4\n" + b"0" * size).replace(b"\n", b"\r\n")
    headers = _headers([
        ("From", "Reports <reports@reports.example>"), ("Subject", "Annual report"), ("Date", _date(when)),
        ("Message-ID", message_id), ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/mixed; boundary="{boundary}"'),
    ])
    return headers + b"\r\n" + _alternative(
        boundary,
        _part("text/html; charset=utf-8", "7bit", html.encode()),
        b'Content-Type: application/pdf; name="report.pdf"\r\nContent-Disposition: attachment; '
        b'filename="report.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n' + attachment,
    )
