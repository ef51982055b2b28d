"""`consentry doctor`: check (and repair) consistency between Milvus and the object store."""

from __future__ import annotations

import click

from .common import CliContext, emit_json, json_option, pass_ctx


@click.command("doctor")
@click.option("--repair", is_flag=True, help="Delete orphan faces and re-publish images whose faces are missing.")
@json_option
@pass_ctx
def doctor(ctx: CliContext, repair: bool, as_json: bool) -> None:
    """Reconcile Milvus with provenance: faces without provenance, provenance pointing to missing faces.

    Exit 0 when consistent (or repaired), 1 when drift was found and not repaired.

    Example: consentry doctor --repair
    """
    from .. import wiring
    from ..indexer.reconcile import Reconciler

    s = ctx.settings
    republish = None
    if repair:
        b = wiring.broker(s)

        def republish(candidate) -> None:
            p = b.producer()
            try:
                p.send(s.topic_images, candidate.key.encode(), candidate.to_json())
                p.flush()
            finally:
                p.close()

    index = wiring.face_index(s)
    warning = index.scale_warning()
    rep = Reconciler(index, wiring.provenance(s), republish).run(repair=repair)
    if as_json:
        emit_json({**rep.to_dict(), "warnings": [warning] if warning else []})
    else:
        if warning:
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"checked {rep.faces_checked} faces and {rep.provenance_checked} provenance records")
        click.echo(f"  faces without provenance:     {len(rep.faces_without_provenance)}")
        click.echo(f"  images with missing faces:    {len(rep.provenance_missing_faces)}")
        for k, v in rep.repaired.items():
            click.echo(f"  repaired {k}: {v}")
    if not rep.ok and not repair:
        raise click.exceptions.Exit(1)


COMMANDS = [doctor]
