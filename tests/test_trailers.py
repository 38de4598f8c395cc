from mdspec import trailers


def test_repeated_keys_are_kept() -> None:
    msg = "mdspec: add x\n\nbody\n\n" + trailers.render(["a" * 40, "b" * 40], "r1", "passed") + "\n"
    assert trailers.values(msg, trailers.IMPLEMENTS) == ["a" * 40, "b" * 40]
    assert trailers.values(msg, "mdspec-run") == ["r1"]
    assert trailers.is_generated(msg)


def test_a_plain_message_is_not_generated() -> None:
    assert not trailers.is_generated("fix: thing\n\nMdspec-Run is mentioned here: in prose\n")
    assert not trailers.is_generated("Mdspec-Run: r1\n")  # a subject line is no trailer block
    assert trailers.parse("subject\n\nSigned-off-by: A <a@b>\n") == [("Signed-off-by", "A <a@b>")]
