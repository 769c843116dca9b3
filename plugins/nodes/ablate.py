"""The ablation node: remove or simplify one code block at a time, run the variants, and summarise each block's
effect on the score."""

from loguru import logger

from ablation import AblationRow, AblationSummary, ablation_variants, split_blocks
from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from core.policy import BlockInfo
from graphs.evaluate import Job, ask, evaluate
from graphs.worklist import head_of


def make_ablate(rc):
    def ablate(state: dict) -> dict:
        best = head_of(state)  # the current track's head: what the outer loop refines
        code = best["code"]
        step = state.get("outer_step", 0) + 1
        earlier = [r for r in state.get("ablations", []) if r.get("head") == best.get("id") and r.get("code") == code]
        if earlier:  # the head did not change since its last ablation: the same runs would give the same table
            logger.info(f"ablation t{step}: reusing the study of this solution from step {earlier[-1]['step']}")
            return {"ablation": earlier[-1]}
        blocks = split_blocks(code)

        def simplify(block):
            return ask(rc, "simplify_block", code, BlockInfo(key=block.key, kind=block.kind, source=block.source))

        variants, skipped = ablation_variants(code, blocks, simplify=simplify)
        runs = evaluate(rc, [Job(v.code, "ablate", f"ablate t{step} {v.block_key}", plan=v.description,
                                 parent=best.get("id")) for v in variants], debug=False)
        rows = []
        for v, a in zip(variants, runs):
            score = a.get("score")
            effect = rc.metric.gain(best["score"], score) if score is not None else None
            rows.append(AblationRow(block_key=v.block_key, kind=v.kind, action=v.action, description=v.description,
                                    status=a["status"], score=score, effect=effect))
        summary = AblationSummary(base_score=best["score"], maximize=rc.metric.maximize, rows=rows)
        text = ask(rc, "summarize_ablation", summary.view()) or ""
        record = {**summary.to_dict(), "step": step, "text": text, "skipped": [list(s) for s in skipped],
                  "table": summary.table(), "head": best.get("id"), "code": code, "track": state.get("track")}
        logger.info(f"ablation t{step}: {len(rows)} variants, {len(skipped)} blocks skipped\n{summary.table()}")
        return {"ablation": record, "ablations": [record]}
    return ablate


@hookimpl
def register_nodes(register):
    register(NodeSpec("ablate", make_ablate, description="ablation study over the solution's code blocks"))
