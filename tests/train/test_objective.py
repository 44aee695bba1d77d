"""The classifier's loss at the answer positions only: the same numbers as the full computation, with and without
the shared prompt prefix, on batches exactly as TRL's collator builds them."""

import pytest
import torch
from conftest import toy_config

from studio.data.formatting import answer_ids, prefix_ids
from studio.data.prepare import prepare_data


@pytest.fixture(scope="module")
def setup(tiny_model_dir, toy_csv, tmp_path_factory):
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig

    from studio.train.sft import Objective, sft_args, sft_trainer_class

    config = toy_config(tiny_model_dir, toy_csv)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    prepared = prepare_data(config.data, tokenizer, 256)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj"],
                                             init_lora_weights=False, task_type="CAUSAL_LM"))
    first = [answer_ids(tokenizer, prepared.rubric, prepared.prompt_format, c)[0] for c in prepared.codes.values()]
    args = SFTConfig(**sft_args(config, output_dir=tmp_path_factory.mktemp("objective"), optim="adamw_torch",
                                dtype="float32", device="cpu"))
    trainer = sft_trainer_class()(model=model, processing_class=tokenizer, args=args,
                                  train_dataset=Dataset.from_list(prepared.tokenized(tokenizer)),
                                  objective=Objective("next_token", first, tokenizer.pad_token_id))
    batch = next(iter(trainer.get_train_dataloader()))
    return model, tokenizer, prepared, first, batch, trainer


def test_answer_only_next_token_loss_equals_the_full_computation(setup):
    from studio.train.objective import answer_logits, classifier_loss, left_pad

    model, tokenizer, _, first, batch, _ = setup
    lengths = batch["attention_mask"].sum(1)
    assert lengths.min() < lengths.max()  # rows of different lengths: the padding matters
    full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    answer = left_pad(batch["input_ids"], batch["attention_mask"], batch["labels"], tokenizer.pad_token_id)
    logits = answer_logits(model, answer)
    assert logits.shape[1] < batch["input_ids"].shape[1] // 4  # a few positions, not the whole sequence
    ours = classifier_loss(logits, answer, first, "next_token")
    assert abs(ours.item() - full.item()) < 1e-5


def test_codes_loss_is_the_softmax_over_the_codes_at_the_first_answer_token(setup):
    from studio.train.objective import answer_logits, classifier_loss, left_pad

    model, tokenizer, prepared, first, batch, _ = setup
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    losses = []
    for row in range(len(batch["input_ids"])):
        pos = int((batch["labels"][row] != -100).nonzero()[0]) - 1  # the position that predicts the code
        klass = first.index(int(batch["labels"][row, pos + 1]))
        losses.append(-torch.log_softmax(logits[row, pos, first], dim=-1)[klass])
    answer = left_pad(batch["input_ids"], batch["attention_mask"], batch["labels"], tokenizer.pad_token_id)
    ours = classifier_loss(answer_logits(model, answer), answer, first, "codes")
    assert abs(ours.item() - torch.stack(losses).mean().item()) < 1e-5
    both = classifier_loss(answer_logits(model, answer), answer, first, "codes+next_token")
    nxt = classifier_loss(answer_logits(model, answer), answer, first, "next_token")
    assert abs(both.item() - (ours.item() + nxt.item())) < 1e-5


def test_the_shared_prefix_gives_the_same_loss_and_gradients(setup):
    from studio.train.objective import answer_logits, classifier_loss, left_pad

    model, tokenizer, prepared, first, batch, _ = setup
    answer = left_pad(batch["input_ids"], batch["attention_mask"], batch["labels"], tokenizer.pad_token_id)
    prefix = prefix_ids(tokenizer, prepared.rubric, prepared.prompt_format)
    assert len(prefix) > 10

    def loss_and_grads(shared):
        model.zero_grad()
        loss = classifier_loss(answer_logits(model, answer, prefix if shared else None), answer, first,
                               "codes+next_token")
        loss.backward()
        return loss.item(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    plain_loss, plain_grads = loss_and_grads(False)
    shared_loss, shared_grads = loss_and_grads(True)
    assert abs(plain_loss - shared_loss) < 1e-5
    for a, b in zip(plain_grads, shared_grads):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    # A batch whose rows do not all start with the prefix falls back to the plain computation.
    wrong = [t + 1 for t in prefix]
    assert torch.allclose(answer_logits(model, answer, wrong), answer_logits(model, answer), atol=1e-6)


def test_the_trainer_trains_on_the_ids_the_scorer_feeds(setup):
    """One tokenization: for every training row, the trainer's prepared dataset starts with exactly the prompt ids
    the scorer (predict, serve, the Playground) feeds for that text, then the code's tokens as the scorer reads them;
    the model's start-of-text token appears once, as the template writes it."""
    from studio.classifier.scoring import LabelScorer

    model, tokenizer, prepared, _, _, trainer = setup
    trainer_rows = [trainer.train_dataset[i] for i in range(len(prepared.train))]
    scorer = LabelScorer(model, tokenizer, prepared.codes, prepared.rubric, prepared.prompt_format)
    start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    for row, text, label in zip(trainer_rows, prepared.train["text"], prepared.train["label"]):
        prompt = scorer.prompt_ids(text)
        assert row["input_ids"][:len(prompt)] == prompt
        code = answer_ids(tokenizer, prepared.rubric, prepared.prompt_format, prepared.codes[label])
        assert row["input_ids"][len(prompt):len(prompt) + len(code)] == code
        assert row["labels"][:len(prompt)] == [-100] * len(prompt)
        assert row["input_ids"][:2].count(start) == 1  # no doubled start
