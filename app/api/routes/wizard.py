"""The strategy wizard: POST /api/strategy, the /wizard page, and the DPO demo dataset."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.api.deps import SessionDep, StoreDep
from app.api.templating import templates
from app.core.config import settings
from app.core.numbers import parse_count
from app.core.paths import DEMO_DATA_DIR
from app.domain.errors import NotFound
from app.domain.models import Dataset
from app.schemas import StrategyAdvice, StrategyRequest
from app.services.datasets import records as dataset_service
from app.services.wizard import advice as wizard
from app.services.wizard.advice import ANSWER_TYPE_LABELS, LEAF_ANSWER_TYPES, InvalidAnswer
from app.services.wizard.decision_tree import (
    QUESTIONS,
    PathStep,
    StrategyAnswers,
    next_question,
)
from app.services.wizard.flowchart import flowchart

router = APIRouter()

DPO_DEMO_FILE = "dpo_demo.jsonl"
DPO_DEMO_NAME = "DPO demo (polite vs rude replies)"
_QUESTIONS = {q.id: q for q in QUESTIONS}


@router.post("/api/strategy", response_model=StrategyAdvice, tags=["wizard"],
             responses={422: {"description": "an answer the tree needs is missing or unusable"}})
def recommend_strategy(body: StrategyRequest, session: SessionDep) -> StrategyAdvice | Response:
    """Recommend a fine-tuning strategy (SFT, GRPO or DPO) from the wizard's answers."""
    answers = StrategyAnswers(labelled=body.labelled, verifiable=body.verifiable,
                                     num_examples=body.num_examples,
                                     reasoning_helps=body.reasoning_helps)
    dataset_format = None
    if body.dataset_id is not None:
        dataset = session.get(Dataset, body.dataset_id)
        if dataset is None:
            raise NotFound(f"dataset {body.dataset_id} not found")
        answers.num_examples, dataset_format = dataset.num_rows, dataset.format
    advice = wizard.advise(answers, large_threshold=settings.large_dataset_threshold,
                           answer_type=body.answer_type, dataset_id=body.dataset_id,
                           dataset_format=dataset_format)
    return StrategyAdvice.model_validate(advice)


@router.get("/wizard", response_class=HTMLResponse, include_in_schema=False)
def wizard_page(request: Request, session: SessionDep) -> HTMLResponse:
    query = request.query_params
    answers = wizard.parse_answers(query)
    threshold = settings.large_dataset_threshold
    notice = None
    dataset = None
    raw_dataset = query.get("dataset_id", "")
    if raw_dataset:
        dataset_id = parse_count(raw_dataset)
        dataset = session.get(Dataset, dataset_id) if dataset_id is not None else None
        if dataset is None:
            notice = {"kind": "warn", "message": f"Dataset {raw_dataset} does not exist (any more):"
                                                 " type the number of examples instead."}
        else:
            answers.num_examples = dataset.num_rows
    dataset_id = dataset.id if dataset else None
    answer_type = query.get("answer_type") or None
    asked = next_question(answers, large_threshold=threshold)
    chart = flowchart(answers, large_threshold=threshold)
    context = {"active_nav": "wizard", "chart": chart, "threshold": threshold, "notice": notice,
               "dataset": dataset}
    path = wizard.answered_path(answers, large_threshold=threshold)
    if asked is not None:
        context |= _question_context(answers, path, asked, dataset_id, answer_type, session)
        return templates.TemplateResponse(request, "wizard/question.html", context)
    try:
        advice = wizard.advise(answers, large_threshold=threshold, answer_type=answer_type,
                               dataset_id=dataset_id,
                               dataset_format=dataset.format if dataset else None)
    except InvalidAnswer as exc:  # an answer type that does not fit: fall back to the default
        notice = {"kind": "warn", "message": str(exc)}
        answer_type = None
        advice = wizard.advise(answers, large_threshold=threshold, dataset_id=dataset_id,
                               dataset_format=dataset.format if dataset else None)
    back = wizard.answers_query(answers, path, dataset_id=dataset_id, answer_type=answer_type,
                                drop_last=True)
    here = wizard.answers_query(answers, path, dataset_id=dataset_id)
    answer_types = [(key, ANSWER_TYPE_LABELS[key], "?" + urlencode(here | {"answer_type": key}))
                    for key in LEAF_ANSWER_TYPES.get(advice["leaf"], ())]
    context |= {"advice": advice, "back_url": "/wizard?" + urlencode(back), "notice": notice,
                "answer_types": answer_types, "demo_file": DPO_DEMO_FILE,
                # Column order as a file would have it (Jinja's tojson sorts the keys).
                "example_json": json.dumps(advice["data_format"]["example"], ensure_ascii=False),
                "share_url": "/wizard?" + urlencode(here | ({"answer_type": advice["answer_type"]}
                                                           if advice["answer_type"] else {}))}
    return templates.TemplateResponse(request, "wizard/result.html", context)


def _question_context(answers: StrategyAnswers, path: list[PathStep], asked: str,
                      dataset_id: int | None, answer_type: str | None, session: Session) -> dict:
    kept = wizard.answers_query(answers, path, dataset_id=dataset_id, answer_type=answer_type)
    if asked == "num_examples":
        kept.pop("dataset_id", None)  # this question chooses it again
    back = wizard.answers_query(answers, path, dataset_id=dataset_id, answer_type=answer_type,
                                drop_last=True)
    return {"question": _QUESTIONS[asked], "step_number": len(path) + 1, "answered": path,
            "hidden": kept, "back_url": "/wizard?" + urlencode(back) if path else None,
            "datasets": dataset_service.list_datasets(session) if asked == "num_examples" else [],
            "prefill_count": answers.num_examples}


@router.post("/wizard/dpo-demo", include_in_schema=False)
def load_dpo_demo(session: SessionDep, store: StoreDep) -> RedirectResponse:
    """Load the DPO demo dataset once, then open the form pre-filled for it."""
    existing = session.scalar(select(Dataset).where(
        Dataset.name == DPO_DEMO_NAME, Dataset.original_filename == DPO_DEMO_FILE).limit(1))
    dataset = existing or dataset_service.create_dataset(
        session, store=store, upload_path=DEMO_DATA_DIR / DPO_DEMO_FILE, filename=DPO_DEMO_FILE,
        name=DPO_DEMO_NAME)
    advice = wizard.advise(StrategyAnswers(labelled=False, verifiable=False),
                           large_threshold=settings.large_dataset_threshold, dataset_id=dataset.id)
    return RedirectResponse(advice["launch_url"], status_code=303)
