#!/usr/bin/env python3
"""Builds the domain corpora that finetune.py adapts text-en to (legal, medical).

Each domain is the matching files of shared/train/text, whole, put through
prepare_bytes.py's filters: corpus exclusion by file hash and by shared
100-byte windows (the SCOTUS OT2010 file shares 440 paragraphs with the OT2009
evaluation file: they are dropped), paragraph deduplication and a 1% holdout.
Writes train/data-domain/<domain>-{train,val}.bin.xz and manifest.json.

    /usr/bin/python3 train/prepare_domain.py
"""
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_bytes as pb  # noqa: E402

SEED = 20261129
DOMAINS = {
    "legal": ["legal_scotus_OT2010_all_opinions", "legal_us_code_titles"],
    "medical": ["medical_hallmarks_of_cancer_abstracts", "medical_medquad_nih_qa", "medical_pmc_oa_fulltext",
                "medical_pubmedqa_abstracts"],
}


def main():
    out = os.path.join(pb.REPO, "train", "data-domain")
    os.makedirs(out, exist_ok=True)
    pb.SEED = SEED
    leak = pb.LeakIndex(os.path.join(pb.SHARED, "corpus"))
    manifest = dict(seed=SEED, corpus_files=len(leak.files))
    for domain, names in DOMAINS.items():
        sources = [("text/" + name, pb.shared_text_source(os.path.join(pb.SHARED, "train", "text", name + ".txt.xz"),
                                                          1 << 40, name + ".txt.xz"))
                   for name in names]
        train_docs, val_docs, stats = pb.filter_documents(sources, leak)
        random.Random(SEED).shuffle(train_docs)
        entry = dict(sources=stats)
        for split, docs in (("train", train_docs), ("val", val_docs)):
            entry[split], _ = pb.write_split(os.path.join(out, "%s-%s.bin" % (domain, split)), docs, "-9")
        manifest[domain] = entry
        print(domain, json.dumps({k: entry[k] for k in ("train", "val")}), flush=True)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
