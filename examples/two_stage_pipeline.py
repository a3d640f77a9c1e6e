"""A two-stage pipeline (planner -> solver) optimized end to end: ONE metric at the end, feedback flows back
through the solver into the planner's prompt, and TGD updates both prompts in one transactional step.

    python examples/two_stage_pipeline.py --engine local --steps 1
    python examples/two_stage_pipeline.py --engine openai:gpt-4o-mini --steps 4
"""
from __future__ import annotations

import argparse

import textopt as tx
from textopt.tasks import get_task


class PlanThenSolve(tx.nn.Module):
    def __init__(self, engine, max_tokens: int = 128):
        super().__init__()
        self.planner_prompt = tx.Variable("Write a short plan for solving the problem. Do not solve it.",
                                          role="system prompt of the planner", requires_grad=True, name="planner")
        self.solver_prompt = tx.Variable("Follow the plan and solve the problem. End with 'Answer: N'.",
                                         role="system prompt of the solver", requires_grad=True, name="solver")
        self.planner = tx.nn.LLMCall(engine, system_prompt=self.planner_prompt, max_tokens=max_tokens,
                                     output_role="plan for the problem", name="planner")
        self.solver = tx.nn.FormattedLLMCall(engine, "Problem: {question}\nPlan: {plan}",
                                             system_prompt=self.solver_prompt, max_tokens=max_tokens,
                                             output_role="solution of the problem", name="solver")

    async def aforward(self, question):
        plan = await self.planner.acall(question)
        return await self.solver.acall(question=question, plan=plan)


def run(engine="local", *, steps=1, batch_size=2, sizes=(4, 4, 4), seed=0, out_dir=None, progress=True):
    engine = tx.get_engine(engine)
    task = get_task("arithmetic")
    splits = task.splits(*sizes, seed=seed)
    model = PlanThenSolve(engine)
    optimizer = tx.optim.TGD(model.parameters(), engine=engine, max_tokens=200)
    trainer = tx.train.Trainer(model, tx.nn.NumberMatch(), optimizer, train=splits.train,
                               val=splits.val, test=splits.test, batch_size=batch_size, steps=steps,
                               seed=seed, backward_engine=engine, out_dir=out_dir, progress=progress)
    return model, trainer.fit()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", default="local")
    ap.add_argument("--steps", type=int, default=1)
    args = ap.parse_args(argv)
    model, result = run(args.engine, steps=args.steps)
    print(f"best val {result.best_val:.2f}, test {result.test_score:.2f}")
    for name, p in model.named_parameters():
        print(f"{name}: {p.value}")


if __name__ == "__main__":
    main()
