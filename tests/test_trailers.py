from mdspec.fast import trailers


def test_repeated_keys_are_kept() -> None:
    msg = "mdspec: add x\n\nbody\n\n" + trailers.render(["a" * 40, "b" * 40], "r1", "passed") + "\n"
    assert trailers.values(msg, trailers.IMPLEMENTS) == ["a" * 40, "b" * 40]
    assert trailers.values(msg, "mdspec-run") == ["r1"]
    assert trailers.is_generated(msg)


def test_a_plain_message_is_not_generated() -> None:
    assert not trailers.is_generated("fix: thing\n\nMdspec-Run is mentioned here: in prose\n")
    assert not trailers.is_generated("Mdspec-Run: r1\n")  # a subject line is no trailer block
    assert trailers.parse("subject\n\nSigned-off-by: A <a@b>\n") == [("Signed-off-by", "A <a@b>")]


SHA_A, SHA_B = "a" * 40, "b" * 40


def test_patch_ids_are_rendered_beside_the_shas_and_read_back() -> None:
    block = trailers.render([SHA_A, SHA_B], "r1", "passed", {SHA_A: "1" * 40})
    assert block.splitlines() == [
        f"Mdspec-Implements: {SHA_A}",
        f"Mdspec-Implements: {SHA_B}",
        f"Mdspec-Patch-Id: {'1' * 40} {SHA_A}",
        "Mdspec-Run: r1",
        "Mdspec-Check: passed",
    ]
    msg = f"mdspec: add x\n\nbody\n\n{block}\n"
    assert trailers.implements(msg) == [(SHA_A, "1" * 40), (SHA_B, None)]
    assert trailers.values(msg, trailers.IMPLEMENTS) == [SHA_A, SHA_B]
    # A generated commit from before patch-ids: the sha alone.
    old = "mdspec: add x\n\n" + trailers.render([SHA_A], "r0", "skipped") + "\n"
    assert trailers.implements(old) == [(SHA_A, None)]


def test_squash_merge_message_with_indented_trailers_is_generated() -> None:
    msg = (
        "Squashed commit of the following:\n\n"
        f"commit {'c' * 40}\nAuthor: Ada <ada@example.com>\nDate:   Sun Nov 29 15:31:29 2026 +0000\n\n"
        "    mdspec: add b\n    \n    Wrote b.\n    \n"
        f"    Mdspec-Implements: {SHA_B}\n    Mdspec-Patch-Id: {'2' * 40} {SHA_B}\n"
        "    Mdspec-Run: r2\n    Mdspec-Check: skipped\n\n"
        f"commit {'d' * 40}\nAuthor: Ada <ada@example.com>\nDate:   Sun Nov 29 15:31:28 2026 +0000\n\n"
        "    spec: b\n"
    )
    assert trailers.is_generated(msg)
    assert trailers.implements(msg) == [(SHA_B, "2" * 40)]
    assert trailers.parse(msg) == []  # the last paragraph is the spec commit's subject


def test_hosted_squash_with_co_author_trailers_is_generated() -> None:
    msg = (
        f"Add b (#12)\n\n* spec: b\n\n* mdspec: add b\n\nWrote b.\n\nMdspec-Implements: {SHA_B}\n"
        "Mdspec-Run: r2\nMdspec-Check: passed\n\nCo-authored-by: Grace <grace@example.com>\n"
    )
    assert trailers.is_generated(msg)
    assert trailers.implements(msg) == [(SHA_B, None)]


def test_cherry_pick_x_line_stays_in_the_trailer_block() -> None:
    msg = "mdspec: add b\n\n" + trailers.render([SHA_B], "r2", "passed") + f"\n(cherry picked from commit {'e' * 40})\n"
    assert trailers.is_generated(msg)
    assert trailers.values(msg, trailers.IMPLEMENTS) == [SHA_B]


def test_prose_that_mentions_mdspec_trailers_is_not_generated() -> None:
    # A middle paragraph counts only with the full shape (Implements and Run): a lone Run line is prose.
    assert not trailers.is_generated("spec: b\n\nMdspec-Run: r2\n\nWe discussed it.\n")
    assert not trailers.is_generated(f"spec: b\n\nSee Mdspec-Implements: {SHA_B} in the log.\n")
    assert not trailers.is_generated("spec: b\n\n    Mdspec-Run: r2\n")  # indented last paragraph, alone
    # Keys are case-insensitive, as git's are.
    assert trailers.is_generated("mdspec: x\n\nMDSPEC-RUN: r1\n")
