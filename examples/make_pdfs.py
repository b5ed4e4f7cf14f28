"""Write the example PDFs in examples/pdfs/ (run once; the PDFs are committed).

Needs fpdf2, a dev-only tool (``pip install fpdf2``); the pipeline itself only
reads PDFs, with pypdf. The documents are fictional samples written for the
demo; each section starts a new page so every PDF has a few pages of text.

    .venv/bin/python examples/make_pdfs.py
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

OUT = Path(__file__).resolve().parent / "pdfs"

DOCUMENTS = {
    "enterprise_ai_adoption_2026.pdf": (
        "State of Enterprise AI Adoption 2026",
        datetime(2026, 10, 2, tzinfo=timezone.utc),
        [
            ("Executive summary", [
                "This report surveys 600 organisations about how they used generative AI in 2026. Most have "
                "moved from pilots to production: 71 percent run at least one AI application used by customers "
                "or employees every day, up from 38 percent in 2025.",
                "Spending is concentrated on a few vendors. OpenAI, Microsoft and Google together account for "
                "most of the model spend in our sample, with Anthropic growing fastest among companies in "
                "financial services and healthcare. Open-weights models from Meta and Mistral AI are used "
                "mostly for internal tools where data must stay on company infrastructure.",
            ]),
            ("Where AI is used", [
                "Customer support remains the most common production use, followed by software development, "
                "document analysis and marketing content. Respondents that deployed coding agents report the "
                "clearest productivity gains, measured as merged pull requests per engineer.",
                "Research and analysis tasks are growing quickly. Analysts use models to summarise filings, "
                "compare contracts and draft first versions of reports, with a person reviewing every output "
                "before it reaches a client.",
                "Automation of whole workflows is still rare. Only 12 percent of respondents let an agent "
                "complete a multi-step business process without human approval at some step.",
            ]),
            ("Costs and budgets", [
                "The median organisation spent 0.4 percent of revenue on AI in 2026, including model usage, "
                "infrastructure and staff. Finance teams increasingly ask for per-team budgets and usage "
                "dashboards, and vendors have responded with spending caps and detailed billing exports.",
                "Falling prices per token have not reduced total spend. As unit costs fell, usage grew faster, "
                "a pattern respondents expect to continue in 2027.",
            ]),
            ("Recommendations", [
                "Build a small evaluation set from your own work before choosing a model. Measure cost and "
                "latency alongside quality. Keep a person in the loop for decisions that affect customers, "
                "and log every model call so that incidents can be investigated.",
            ]),
        ],
    ),
    "inference_platforms_briefing.pdf": (
        "Vendor Briefing: Inference Platforms Compared",
        datetime(2026, 11, 3, tzinfo=timezone.utc),
        [
            ("Purpose", [
                "This briefing compares hosted inference platforms for a client that plans to serve a "
                "document-analysis assistant to 20,000 employees. It covers pricing, latency, data handling "
                "and the effort needed to switch providers later.",
            ]),
            ("Hosted APIs", [
                "OpenAI and Anthropic offer the strongest models for long-document analysis in our tests. "
                "Both provide enterprise agreements with zero data retention, audit logs and regional "
                "processing. Pricing is per token, with discounts for cached prompts and batch jobs.",
                "Google offers competitive pricing through its cloud platform and integrates with the "
                "client's existing data warehouse. Microsoft hosts OpenAI models in its own cloud regions, "
                "which simplifies procurement for clients already on Azure contracts.",
            ]),
            ("Self-hosting", [
                "Running open-weights models on rented NVIDIA accelerators is cheaper at high, steady volume, "
                "but requires staff who can operate inference servers, monitor quality and apply security "
                "patches. For the client's expected volume, self-hosting breaks even only after about "
                "eighteen months.",
                "Amazon Bedrock offers a middle path: several providers' models behind one API, billed "
                "through the client's existing cloud account.",
            ]),
            ("Recommendation", [
                "Start with a hosted API behind a thin internal gateway that records every call, so that the "
                "provider can be changed without touching applications. Re-evaluate self-hosting once usage "
                "is stable and measured.",
            ]),
        ],
    ),
    "board_memo_ai_strategy.pdf": (
        "Board Memo: AI Strategy Roadmap 2027",
        datetime(2026, 11, 17, tzinfo=timezone.utc),
        [
            ("Context", [
                "This memo proposes the company's AI roadmap for 2027. In 2026 we deployed assistants for "
                "customer support and software development; both met their targets. The board asked for a "
                "plan that extends these gains while controlling risk and cost.",
            ]),
            ("Proposed initiatives", [
                "First, expand the support assistant to handle refunds end to end for orders below a set "
                "amount, with automatic escalation above it. Second, give every engineering team access to "
                "coding agents, paired with stricter automated testing. Third, build a research assistant "
                "for the strategy team that summarises market news and competitor filings each week.",
                "Each initiative has a named owner, a budget cap and a success metric agreed with finance.",
            ]),
            ("Risks", [
                "The main risks are vendor concentration, regulatory change under the EU AI Act, and errors "
                "that reach customers. We will keep contracts with at least two model providers, maintain "
                "the documentation regulators require, and review a sample of automated decisions weekly.",
            ]),
            ("Decision requested", [
                "The board is asked to approve a 2027 budget of 3.2 million euros for the three initiatives "
                "and to receive a quarterly report on usage, cost and incidents.",
            ]),
        ],
    ),
}


def write(name: str, title: str, created: datetime, sections: list[tuple[str, list[str]]]) -> None:
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_author("Knowledge pipeline examples")
    pdf.set_creation_date(created)
    pdf.set_margins(20, 20, 20)
    for number, (heading, paragraphs) in enumerate(sections):
        pdf.add_page()
        if number == 0:
            pdf.set_font("Helvetica", "B", 18)
            pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "", 10)
            note = f"Published {created:%B %d, %Y}. Fictional sample document for the demo."
            pdf.multi_cell(0, 6, note, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 11)
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    pdf.output(str(OUT / name))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (title, created, sections) in DOCUMENTS.items():
        write(name, title, created, sections)
        print(OUT / name)


if __name__ == "__main__":
    main()
