"""The check node: static data-leakage and data-usage checks on the chosen solution (every member of an
ensemble), with the policy asked to repair what they find."""

from loguru import logger

from core.checks import leakage_findings, unused_files
from core.hookspecs import hookimpl
from core.nodes import NodeSpec
from graphs.evaluate import Job, ask, evaluate

NOT_DATA = {"sample_submission.csv"}  # a script may build its output without reading the sample


def make_check(rc):
    def check(state: dict) -> dict:
        best = state.get("best")
        if not best:
            return {"checks": {"skipped": "no solution"}}
        scripts = best.get("members") or [best]
        files = [f for f in rc.ctx.files if f not in NOT_DATA]
        report = {"leakage": [], "unused_files": [], "fixed": []}
        for m in scripts:
            report["leakage"] += [f"{m.get('label')}: {f.message}" for f in leakage_findings(m["code"])]
            report["unused_files"] += [f for f in unused_files(m["code"], files) if f not in report["unused_files"]]
        update: dict = {"checks": report}
        # data usage: a single solution that ignores provided files is extended, kept only if it is not worse
        if report["unused_files"] and not best.get("members") and rc.clock.left() > rc.reserve():
            code = ask(rc, "use_all_data", best["code"], report["unused_files"])
            if code and code != best["code"]:
                [a] = evaluate(rc, [Job(code, "check", "data usage", f"use {', '.join(report['unused_files'])}",
                                        best.get("id"))])
                if a.get("score") is not None and not rc.metric.better(best["score"], a["score"]):
                    report["fixed"].append(f"now uses {', '.join(report['unused_files'])} (score {a['score']:.5g})")
                    update["best"] = a
        logger.info(f"check: {len(report['leakage'])} leakage findings, unused files: "
                    f"{', '.join(report['unused_files']) or 'none'}")
        return update
    return check


@hookimpl
def register_nodes(register):
    register(NodeSpec("check", make_check, description="data-leakage and data-usage checks"))
