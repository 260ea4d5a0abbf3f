"""The book's figure rule: drawn no wider than the column, no text under 9 pt."""

import io

import pytest

from bdl_src.plots.common import COLUMN_INCHES, MIN_POINTS, figure, unreadable


def draw(fig):
    fig.savefig(io.BytesIO(), format="png")


def test_a_readable_figure_draws():
    fig, axes = figure(2, width=COLUMN_INCHES, height=3.0)
    axes[0, 0].plot([0, 1], [0, 1], label="a line")
    axes[0, 0].legend()
    axes[0, 1].set_title("a title")
    draw(fig)
    assert unreadable(fig) == []


def test_small_text_fails_the_draw_and_names_the_text():
    fig, axes = figure()
    axes[0, 0].set_title("tiny title", fontsize=MIN_POINTS - 2)
    with pytest.raises(ValueError, match="'tiny title' at 7 pt"):
        draw(fig)


def test_a_figure_wider_than_the_column_is_refused():
    with pytest.raises(ValueError, match="wider than the book's column"):
        figure(width=COLUMN_INCHES + 1)


def test_tick_labels_count_too():
    fig, axes = figure()
    axes[0, 0].tick_params(labelsize=6)
    with pytest.raises(ValueError, match="at 6 pt"):
        draw(fig)
