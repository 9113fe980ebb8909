"""The province of ``tests.worlds.province()``, imported: the tree the other tests stand on."""

from matrix.tree import UnitTree


def test_province_world_imports_and_forms_a_tree(province_db, bp):
    tree = UnitTree.load(province_db, bp.level_keys)
    assert tree.root == "P"
    assert tree.counts_by_level("P") == {"province": 1, "city": 1, "county": 3, "school": 6}
