"""`consentry search`: search indexed faces by photo, with a stated purpose."""

from __future__ import annotations

from pathlib import Path

import click

from .common import CliContext, emit_json, json_option, pass_ctx, table


@click.command("search")
@click.argument("photo", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--purpose", required=True, help="Why you are searching (audit-logged).")
@click.option("--case", "case_ref", help="Case reference (audit-logged).")
@click.option("--top-k", type=int, help="Results per face in the photo (default: search_default_top_k).")
@click.option("--threshold", type=float, help="Cosine similarity floor (default and minimum: search_threshold).")
@click.option("--source", "sources", multiple=True, help="Only faces from this source id (repeatable).")
@click.option("--job", "jobs", multiple=True, help="Only faces from this crawl job id (repeatable).")
@json_option
@pass_ctx
def search(ctx: CliContext, photo: Path, purpose: str, case_ref: str | None, top_k: int | None,
           threshold: float | None, sources: tuple[str, ...], jobs: tuple[str, ...], as_json: bool) -> None:
    """Search faces like those in PHOTO; the search is audit-logged as the local operator.

    \b
    Example:
      consentry search me.jpg --purpose "subject access request" --case SAR-2026-014
    """
    from ..indexer.search import SearchOptions
    from ..wiring import face_search
    from .common import local_actor

    options = SearchOptions.build(purpose=purpose, case=case_ref, top_k=top_k, threshold=threshold,
                                  source=list(sources), job=list(jobs))
    result = face_search(ctx.settings).by_photo(photo.read_bytes(), options, local_actor())
    if as_json:
        emit_json(result.model_dump(mode="json"))
        return
    rows = [(q.index, h.face_id[:16], f"{h.score:.3f}", h.source_id, h.image.url or "(erased)", h.image.page_url or "",
             h.image.fetched_at.isoformat(timespec="seconds") if h.image.fetched_at else "")
            for q in result.query_faces for h in q.hits]
    table(rows, ["query face", "face id", "score", "source", "image URL", "page URL", "fetched at"])
    hits = sum(len(q.hits) for q in result.query_faces)
    click.echo(f"{hits} match(es) for {len(result.query_faces)} face(s) at threshold {result.threshold}; "
               f"audit entry {result.audit_seq}", err=True)


COMMANDS = [search]
