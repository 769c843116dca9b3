"""The training command: ``python -m core.train [collect | dataset | evaluate | export] train.yaml``.

A second composition root beside core/run.py: it wires train.yaml, the plugin host and the rl/ layer together.
Every stage writes into the output folder and is skipped when its result is there, so a killed run goes on where it
stopped.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from loguru import logger

from core import logs
from core.errors import UserError
from core.files import folder_atomic, write_atomic
from core.local_llm import smollm2_dir
from core.loading import installed_registry, make_executor

COMMANDS = ("collect", "dataset", "evaluate", "export")
ADAPTER_FILE = "adapter_config.json"
SFT_EXAMPLES = "examples.jsonl"
# How long the other processes of an ``accelerate launch`` wait at a barrier (torch.distributed's default: 30
# minutes) while the main process runs scripts alone: expert actions or an on-policy round's pipeline runs take hours
# at full scale. A process that fails ends the launch, so the others do not sit out the wait.
WAIT_HOURS = 12


def main(argv: list[str] | None = None) -> int:
    logs.enable()  # an application: mlestar's packages log (see core.logs)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m core.train",
        description="Step-wise RL for the refinement policy: collect experience, build the step dataset, SFT then "
                    "GRPO a LoRA adapter (docs/rl.md).")
    parser.add_argument("command", nargs="?", choices=(*COMMANDS, "train"), default="train",
                        help="collect: run the pipeline over the suite; dataset: build the step dataset; "
                             "evaluate: mean reward on held-out states; export: the base model with the adapter "
                             "merged in, for an OpenAI-compatible server; train (default): dataset, SFT, GRPO")
    parser.add_argument("train_yaml", help="path of train.yaml")
    parser.add_argument("--adapter", action="append", default=[],
                        help="evaluate: an adapter folder to score (repeatable; the base model is always scored); "
                             "export: the adapter to merge (default: the output's adapter/)")
    parser.add_argument("--out", default=None, help="export: the model folder to write (default: <output>/merged)")
    if argv and argv[0] not in (*COMMANDS, "train", "-h", "--help"):
        argv = ["train", *argv]
    args = parser.parse_args(argv)
    try:
        return {"collect": cmd_collect, "dataset": cmd_dataset, "evaluate": cmd_evaluate, "export": cmd_export,
                "train": cmd_train}[args.command](args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to go on from the last finished stage", file=sys.stderr)
        return 130


def cmd_collect(args) -> int:
    from rl.collect import collect
    from rl.config import load_train_file

    spec = load_train_file(args.train_yaml, need_data=False)
    out = spec.collect.out or spec.output / "experience"
    policies = [p.model_dump() for p in spec.collect.policies]
    folders = collect(spec.collect.suite, out, policies=policies, seeds=spec.collect.seeds,
                      budget=spec.collect.budget, tasks=spec.collect.tasks, executor=_collect_executor(spec))
    print(f"{len(folders)} runs recorded under {out}")
    return 0


def cmd_dataset(args) -> int:
    spec = load_spec(args)
    splits = step_dataset(spec, rebuild=True)
    print(f"{len(splits['train'])} training and {len(splits['eval'])} evaluation steps → {spec.output / 'dataset'}")
    return 0


def cmd_train(args) -> int:
    """Dataset, SFT, GRPO (and on-policy rounds). Under ``accelerate launch`` every process runs this: the main one
    builds what the others read (the dataset, the expert actions, the on-policy rounds' runs), runs every script
    (only it has an executor) and writes every file; the others train on their share and wait for it."""
    from rl.dataset import sample_states
    from rl.sft import train_sft
    from rl.traininglog import TrainingLog

    state = accelerate_state()
    spec = load_spec(args)
    with state.main_process_first():  # the others load the dataset the main process saved
        splits = step_dataset(spec)
    # one step per distinct prompt: steps recorded from one prompt differ only in the action taken, which SFT's
    # experts and GRPO's samples replace
    train = sample_states(splits["train"], spec.data.max_states or len(splits["train"]))
    if not train:
        raise UserError(f"{args.train_yaml}: the step dataset has no training states; collect more experience "
                        f"(`python -m core.train collect {args.train_yaml}`) or hold out fewer tasks")
    base = str(spec.base_model or smollm2_dir())
    fmt = spec.action_format
    runner, executor = make_runner(spec) if state.is_main_process else (None, None)
    adapter = None
    if spec.sft.enabled:
        sft_dir = spec.output / "sft"
        adapter = sft_dir / "adapter"
        if (adapter / ADAPTER_FILE).is_file():
            logger.info(f"SFT: adapter already trained in {adapter}")
        else:
            with state.main_process_first():  # the others read the examples the main process ran and wrote
                examples = (_sft_examples(spec, train, runner, sft_dir, args.train_yaml) if state.is_main_process
                            else _read_examples(sft_dir / SFT_EXAMPLES))
            settings = _seeded(spec.sft, spec.seed, extra=("enabled", "per_state", "pool", "experts", "max_states"))
            train_sft(base, examples, adapter, settings, callbacks=[TrainingLog(sft_dir)])
    if spec.rl.enabled:
        adapter = _grpo_stage(spec, base, adapter, train, runner, spec.output / "rl")
        for i in range(1, spec.rl.iterations):
            with state.main_process_first():  # the main process runs the round; the others load its dataset
                splits = _on_policy_round(spec, base, adapter, splits, spec.output / f"iteration-{i}")
            train = sample_states(splits["train"], spec.data.max_states or len(splits["train"]))
            adapter = _grpo_stage(spec, base, adapter, train, runner, spec.output / f"iteration-{i}" / "rl")
    executor_close = getattr(executor, "close", None)
    if executor_close:
        executor_close()
    if adapter is None:
        raise UserError(f"{args.train_yaml}: sft.enabled and rl.enabled are both false; nothing to train")
    if not state.is_main_process:
        return 0
    final = _publish(adapter, spec.output / "adapter")
    write_atomic(spec.output / "train.json", json.dumps(
        {"base_model": base, "action_format": fmt, "adapter": str(final), "trained_from": str(adapter),
         "train_states": len(train), "eval_states": len(splits["eval"]),
         "iterations": spec.rl.iterations if spec.rl.enabled else 0, "processes": state.num_processes}, indent=2))
    print(f"adapter: {final}\nuse it in task.yaml:\n  policy: {{name: hf, options: {{model: {base}, adapter: {final}, "
          f"action_format: {fmt}}}}}")
    return 0


def _sft_examples(spec, train: list, runner, sft_dir: Path, where: str) -> list[dict]:
    """The expert actions that ran on SFT's states, written to ``sft_dir``/examples.jsonl."""
    from rl.experts import expert_examples

    sft_states = train[:spec.sft.max_states]
    examples = expert_examples(sft_states, runner, spec.action_format, per_state=spec.sft.per_state,
                               pool=spec.sft.pool, policies=_expert_policies(spec))
    if not examples:
        raise UserError(f"{where}: no expert action ran on the {len(sft_states)} training states; "
                        f"see the run logs under {spec.output / 'executor'}")
    sft_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(sft_dir / SFT_EXAMPLES, "".join(json.dumps(e) + "\n" for e in examples))
    logger.info(f"SFT: {len(examples)} expert actions from {len(sft_states)} states")
    return examples


def _grpo_stage(spec, base: str, adapter: Path | None, train: list, runner, rl_dir: Path) -> Path:
    """GRPO from ``adapter`` on ``train`` into ``rl_dir`` (skipped when its adapter is there); the new adapter."""
    from rl.grpo import train_grpo

    done = rl_dir / "adapter"
    if (done / ADAPTER_FILE).is_file():
        logger.info(f"GRPO: adapter already trained in {done}")
        return done
    settings = _seeded(spec.rl, spec.seed, extra=("enabled", "iterations"))
    return train_grpo(base, adapter, train, runner, spec.action_format, rl_dir, settings)


def _on_policy_round(spec, base: str, adapter: Path, splits: dict, folder: Path) -> dict:
    """One on-policy round's data: the pipeline run on the training tasks with ``adapter`` answering
    ``plan_refinement`` (sampling at GRPO's temperature, so its runs explore; replies capped at GRPO's completion
    length), and the dataset with those runs' steps added (saved in ``folder``/dataset and reused)."""
    from rl.collect import collect
    from rl.dataset import SPLITS, extend_dataset, load_steps, save_dataset

    saved = folder / "dataset"
    if (saved / "train.jsonl").is_file():
        return {name: load_steps(saved, name) for name in SPLITS}
    # replies as long as GRPO let them be: a longer budget only gives a half-trained adapter room to ramble
    policy = {"name": "hf", "options": {"model": base, "adapter": str(adapter), "action_format": spec.action_format,
                                        "answer_roles": ["plan_refinement"], "temperature": spec.rl.temperature,
                                        "max_tokens": {"plan_refinement": spec.rl.max_completion_length}}}
    from core.bench import load_suite

    held = {s.task for s in splits["eval"]}
    in_suite = {t.name for t in load_suite(spec.collect.suite)[1]}
    tasks = [t for t in (spec.collect.tasks or sorted({s.task for s in splits["train"]}))
             if t not in held and t in in_suite]
    if not tasks:
        raise UserError(f"rl.iterations: none of the training tasks is in collect.suite ({spec.collect.suite}); "
                        f"an on-policy round runs the pipeline on them: point collect.suite at a suite that has them")
    logger.info(f"on-policy round {folder.name}: the pipeline with {adapter} on {len(tasks)} training tasks")
    collect(spec.collect.suite, folder / "experience", policies=[policy], seeds=spec.collect.seeds,
            budget=spec.collect.budget, tasks=tasks, executor=_collect_executor(spec), log=logger.info)
    grown = extend_dataset(splits, [folder / "experience"])
    added = len(grown["train"]) - len(splits["train"])
    logger.info(f"on-policy round {folder.name}: {added} new training steps from the policy's own runs")
    save_dataset(grown, saved)
    return grown


def cmd_evaluate(args) -> int:
    from rl.evaluate import evaluate, hf_policy

    spec = load_spec(args)
    splits = step_dataset(spec)
    if not splits["eval"]:
        raise UserError(f"{args.train_yaml}: no evaluation states; name held-out tasks in data.eval_tasks")
    base = spec.base_model or smollm2_dir()
    runner, _ = make_runner(spec)
    rows = []
    for label, adapter in [("base", None), *((str(a), a) for a in args.adapter)]:
        if adapter is not None and not (Path(adapter) / ADAPTER_FILE).is_file():
            raise UserError(f"--adapter: {adapter} is not a PEFT adapter folder (no {ADAPTER_FILE})")
        result = evaluate(hf_policy(base, adapter, spec.action_format), splits["eval"], runner, label)
        rows.append(result.summary())
        print(json.dumps(rows[-1]))
    return 0


def cmd_export(args) -> int:
    from core.local_llm import merge_adapter
    from rl.config import load_train_file

    spec = load_train_file(args.train_yaml, need_data=False)
    if len(args.adapter) > 1:
        raise UserError("export: give one --adapter")
    adapter = Path(args.adapter[0]) if args.adapter else spec.output / "adapter"
    if not (adapter / ADAPTER_FILE).is_file():
        raise UserError(f"--adapter: {adapter} is not a PEFT adapter folder (no {ADAPTER_FILE}); train one first "
                        f"(`python -m core.train {args.train_yaml}`)")
    dest = Path(args.out) if args.out else spec.output / "merged"
    base = str(spec.base_model or smollm2_dir())
    merge_adapter(base, adapter, dest)
    print(f"model: {dest}\nserve it, e.g. `vllm serve {dest}` or `transformers serve {dest}`, and use it in "
          f"task.yaml:\n"
          f"  policy: {{name: openai, options: {{base_url: http://127.0.0.1:8000/v1, model: {dest}, "
          f"action_format: {spec.action_format}}}}}")
    return 0


# --- stages ---------------------------------------------------------------------------------------------------

def accelerate_state():
    """This process's accelerate state: one process, or one of ``accelerate launch``'s, joined to the others with
    a process group whose barriers wait up to WAIT_HOURS (the trainers reuse it)."""
    from datetime import timedelta

    from accelerate import PartialState

    from core.local_llm import default_device

    # cpu: without it, processes launched on a machine without GPUs would each run alone instead of joining with gloo
    return PartialState(cpu=default_device() != "cuda", timeout=timedelta(hours=WAIT_HOURS))


def _read_examples(path: Path) -> list[dict]:
    """The rows of an examples.jsonl (what _sft_examples wrote)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_spec(args):
    """train.yaml of the command line, checked (its data must exist)."""
    from rl.config import load_train_file

    return load_train_file(args.train_yaml)


def step_dataset(spec, rebuild: bool = False) -> dict:
    """The step dataset: data.dataset when given, else built from data.stores into <output>/dataset (reused)."""
    from rl.dataset import SPLITS, build_dataset, load_steps, save_dataset

    folder = spec.data.dataset or spec.output / "dataset"
    if spec.data.dataset is not None or (not rebuild and (folder / "train.jsonl").is_file()):
        return {name: load_steps(folder, name) for name in SPLITS}
    splits = build_dataset(spec.data.stores, eval_tasks=spec.data.eval_tasks)
    save_dataset(splits, folder)
    return splits


def make_runner(spec):
    """(StepRunner, executor) for train.yaml's executor and action format."""
    from rl.step import StepRunner

    registry = installed_registry()
    executor = make_executor(registry, spec.executor.name, spec.executor.options, spec.output / "executor",
                             "train.yaml: executor")
    return StepRunner(executor, registry, spec.action_format, timeout=spec.timeout), executor


def _collect_executor(spec) -> dict | None:
    """collect.executor as a task.yaml entry, or None (each task's own)."""
    return None if spec.collect.executor is None else spec.collect.executor.model_dump()


def _expert_policies(spec) -> list:
    if not spec.sft.experts:
        return []
    registry = installed_registry()
    return [registry.get("policy", choice.name, f"train.yaml: sft.experts.{i}.name")(dict(choice.options))
            for i, choice in enumerate(spec.sft.experts)]


def _seeded(section, seed: int, extra: tuple[str, ...]):
    """The trainer's own settings from a train.yaml section: its keys minus ours, the file's seed unless it sets one."""
    values = section.model_dump(exclude=set(extra))
    if "seed" not in section.model_fields_set:
        values["seed"] = seed
    return type(section).__mro__[1].model_validate(values)


def _publish(adapter: Path, dest: Path) -> Path:
    """A copy of the final adapter at ``dest``, swapped in whole."""
    with folder_atomic(dest) as tmp:
        shutil.copytree(adapter, tmp, dirs_exist_ok=True)
    return dest


if __name__ == "__main__":
    sys.exit(main())
