# Stage 5: every learning curve of the study into one tidy table, then figures and tables. Nothing
# here retrains: `snakemake report_only` (or `--report`) rebuilds them from existing results.


rule aggregate_curves:
    input:
        runs=study_metrics,
    output:
        csv="results/report/{study}/curves.csv",
        parquet="results/report/{study}/curves.parquet",
    log:
        "logs/report/{study}/aggregate_curves.log",
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer aggregate-curves --study {wildcards.study} --runs {input.runs} --out {output.csv}"
        " > {log} 2>&1"


rule plot_report:
    input:
        table="results/report/{study}/curves.parquet",
        summaries=pretrain_summaries,
        baselines=baseline_files,
    output:
        report(
            directory("results/report/{study}/figures"),
            patterns=["{name}.png"],
            caption="captions/figures.rst",
            category="Figures",
        ),
    log:
        "logs/report/{study}/plot_report.log",
    params:
        costs=pretrain_cost_specs,
        frames=frames_per_step_specs,
        dqn=dqn_steps_specs,
        config=cli_config(config["report"]),
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer plot-report --table {input.table} --pretrain-summaries {params.costs}"
        " --baselines {input.baselines} --frames-per-step {params.frames} --dqn-steps {params.dqn}"
        " --config {params.config} --out {output} > {log} 2>&1"


rule make_tables:
    input:
        table="results/report/{study}/curves.parquet",
    output:
        csv=report("results/report/{study}/table.csv", caption="captions/table.rst", category="Tables"),
        md="results/report/{study}/table.md",
    log:
        "logs/report/{study}/make_tables.log",
    params:
        out=subpath(output.csv, parent=True),
        config=cli_config(config["report"]),
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer make-tables --table {input.table} --config {params.config} --out {params.out}"
        " > {log} 2>&1"


rule summarise_findings:
    """The findings page: each seed claim the study can test, holds / does not hold / inconclusive."""
    input:
        table="results/report/{study}/curves.parquet",
        figures="results/report/{study}/figures",
        summaries=pretrain_summaries,
        extras=report_extras,
    output:
        md=report("results/report/{study}/summary.md", caption="captions/summary.rst", category="Findings"),
        json="results/report/{study}/summary.json",
    log:
        "logs/report/{study}/summarise_findings.log",
    params:
        out=subpath(output.md, parent=True),
        costs=pretrain_cost_specs,
        design=cli_config({"envsets": config["envsets"], "targets": config["targets"]}),
        config=cli_config(config["report"]),
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer summarise-findings --study {wildcards.study} --table {input.table}"
        " --figures {input.figures} --design {params.design} --pretrain-summaries {params.costs}"
        " --extras {input.extras} --config {params.config} --out {params.out} > {log} 2>&1"


rule analyse_latents:
    input:
        model="results/pretrain/{envset}/seed{seed}/world_model.pt",
    output:
        report(
            directory("results/report/{study}/latent/{envset}/seed{seed}"),
            patterns=["{name}.png"],
            caption="captions/latent.rst",
            category="Latent analysis",
        ),
    log:
        "logs/report/{study}/latent/{envset}/seed{seed}.log",
    params:
        games=lambda w: " ".join(ENVSETS[w.envset]),
        max_frames=config["latent_analysis"]["max_frames"],
        k=config["latent_analysis"]["k"],
        n_perm=config["latent_analysis"]["n_perm"],
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer latent-analysis --model {input.model} --games {params.games} --k {params.k}"
        " --max-frames {params.max_frames} --n-perm {params.n_perm} --seed {wildcards.seed}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule dream_rollouts:
    input:
        model="results/pretrain/{envset}/seed{seed}/world_model.pt",
    output:
        report(
            directory("results/report/{study}/rollouts/{envset}/seed{seed}"),
            patterns=["{name}.png"],
            caption="captions/rollouts.rst",
            category="Dreamed rollouts",
        ),
    log:
        "logs/report/{study}/rollouts/{envset}/seed{seed}.log",
    params:
        seen=lambda w: " ".join(ENVSETS[w.envset]),
        unseen=lambda w: " ".join(unseen_targets(w.envset)),
        context=config["rollouts"]["context"],
        horizon=config["rollouts"]["horizon"],
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer dream-rollouts --model {input.model} --seen {params.seen} --unseen {params.unseen}"
        " --context {params.context} --horizon {params.horizon} --seed {wildcards.seed} --out {output}"
        " > {log} 2>&1"


rule dream_rollouts_agent:
    """Dreamed rollouts of an online multi-task agent's world model (seed 003: the Mario study's agents)."""
    input:
        model="results/pretrain_agent/{envset}/seed{seed}/agent.pt",
    output:
        report(
            directory("results/report/{study}/rollouts_agent/{envset}/seed{seed}"),
            patterns=["{name}.png"],
            caption="captions/rollouts.rst",
            category="Dreamed rollouts",
        ),
    log:
        "logs/report/{study}/rollouts_agent/{envset}/seed{seed}.log",
    params:
        seen=lambda w: " ".join(ENVSETS[w.envset]),
        unseen=lambda w: " ".join(unseen_targets(w.envset)),
        context=config["rollouts"]["context"],
        horizon=config["rollouts"]["horizon"],
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer dream-rollouts --model {input.model} --seen {params.seen} --unseen {params.unseen}"
        " --context {params.context} --horizon {params.horizon} --seed {wildcards.seed} --out {output}"
        " > {log} 2>&1"


rule compare_reconstructions:
    """Seed 003 fig. 8: the same frames of each unseen game reconstructed by a model trained on one game
    and by the models pre-trained on the study's sets."""
    input:
        unpack(reconstruction_models),
    output:
        report(
            directory("results/report/{study}/reconstructions"),
            patterns=["{name}.png"],
            caption="captions/reconstructions.rst",
            category="Dreamed rollouts",
        ),
    log:
        "logs/report/{study}/reconstructions.log",
    params:
        models=lambda w, input: " ".join(shlex.quote(f"{reconstruction_label(k)}={v}")
                                         for k, v in input.items()),
        games=" ".join(study_unseen_games()),
        frames=config["rollouts"]["reconstruction_frames"],
        seed=SEEDS[0],
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer compare-reconstructions --models {params.models} --games {params.games}"
        " --frames {params.frames} --seed {params.seed} --out {output} > {log} 2>&1"


rule plot_prediction_quality:
    """Seed 002's prediction quality over training, from the world-model snapshots that pre-training
    writes at `pretrain.snapshot_fractions` (the folder is read when the rule runs)."""
    input:
        model="results/pretrain/{envset}/seed{seed}/world_model.pt",
    output:
        report(
            directory("results/report/{study}/prediction_quality/{envset}/seed{seed}"),
            patterns=["{name}.png"],
            caption="captions/prediction_quality.rst",
            category="Dreamed rollouts",
        ),
    log:
        "logs/report/{study}/prediction_quality/{envset}/seed{seed}.log",
    params:
        snapshots=lambda w, input: os.path.join(os.path.dirname(input.model), "snapshots"),
        final=config["pretrain"]["updates"],
        seen=lambda w: " ".join(ENVSETS[w.envset]),
        unseen=lambda w: " ".join(unseen_targets(w.envset)),
        context=config["rollouts"]["context"],
        horizon=config["rollouts"]["horizon"],
    threads: 1
    conda:
        "../envs/wmtransfer.yaml"
    shell:
        "wmtransfer prediction-quality --snapshots {params.snapshots} {params.final}={input.model}"
        " --seen {params.seen} --unseen {params.unseen} --context {params.context}"
        " --horizon {params.horizon} --seed {wildcards.seed} --out {output} > {log} 2>&1"


rule report_only:
    """Rebuild the figures and tables from the results that exist, without training anything."""
    input:
        report_outputs(),
