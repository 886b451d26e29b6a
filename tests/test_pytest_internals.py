"""Each assumption aiotempo makes about pytest's private structures, checked on its own.

When one of these fails after a pytest upgrade, src/aiotempo/_pytest_internals.py is the one
place to adapt.
"""


def test_assumptions_about_fixture_internals(suite):
    pytester = suite(
        {
            "conftest.py": """
                import pytest
                from aiotempo import _pytest_internals as internals

                @pytest.fixture
                def leaf():
                    return "leaf"

                @pytest.fixture
                def observed(request, leaf):
                    item = internals.requesting_item(request)
                    assert item is request.node
                    defs = internals.closure_fixturedefs(item)
                    assert [d.argname for d in defs["leaf"]] == ["leaf"]
                    visible = internals.visible_fixturedefs(item, "leaf")
                    assert [d.argname for d in visible] == ["leaf"]
                    assert internals.visible_fixturedefs(item, "no_such_fixture") == ()
                    return "observed"

                @pytest.hookimpl(wrapper=True)
                def pytest_fixture_setup(fixturedef, request):
                    if fixturedef.argname != "replaced":
                        return (yield)
                    with internals.fixture_function_replaced(fixturedef, lambda: "replacement"):
                        result = yield
                    assert fixturedef.func.__name__ == "replaced"
                    return result
            """,
            "test_internals.py": """
                import pytest
                from aiotempo import _pytest_internals as internals

                order = []

                @pytest.fixture
                def replaced():
                    return "original"

                @pytest.fixture
                def first():
                    yield
                    order.append("first")

                @pytest.fixture
                def second(request):
                    yield
                    order.append("second")

                @pytest.fixture
                def later(request):
                    request.getfixturevalue("first")
                    fixturedef = request._fixturemanager.getfixturedefs("second", request.node)[-1]
                    request.getfixturevalue("second")
                    internals.finish_before(request, "first", fixturedef)

                class TestBound:
                    @pytest.fixture
                    def method_fixture(self):
                        return self

                    def test_bound(self, request, method_fixture):
                        defs = internals.visible_fixturedefs(request.node, "method_fixture")
                        fixturedef = defs[-1]
                        func = internals.fixture_function(fixturedef, request)
                        assert func.__self__ is self

                def test_replaced(replaced, observed):
                    assert replaced == "replacement" and observed == "observed"

                def test_fixture_value(request):
                    assert internals.fixture_value(request.node, "leaf") == "leaf"

                def test_finish_before(later):
                    pass

                def test_finish_order():
                    assert order == ["second", "first"]

                def test_private_definitions_also_for_fixtures_requested_by_name(request):
                    internals.privatize_function_fixtures(request.node)
                    shared = request._fixturemanager.getfixturedefs("leaf", request.node)[-1]
                    assert request.getfixturevalue("leaf") == "leaf"
                    assert shared.cached_result is None  # the test's private copy has it
            """,
        }
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=6)


def test_assumptions_about_unraisable_exceptions(suite):
    pytester = suite(
        """
        import collections
        from aiotempo import _pytest_internals as internals

        class Leaky:
            def __del__(self):
                raise RuntimeError("raised in __del__")

        def test_queue_replaced(request):
            shared = internals.unraisable_queue(request.config)
            assert isinstance(shared, collections.deque)
            replacement = collections.deque()
            with internals.unraisable_queue_replaced(request.config, replacement):
                Leaky()
                assert internals.unraisable_queue(request.config) is replacement
            assert len(replacement) == 1 and not shared
            assert internals.unraisable_queue(request.config) is shared
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)
