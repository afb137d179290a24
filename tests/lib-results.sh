# Sourced by tests/run-*.sh: one line per result in the results file that tests/summary.sh
# adds up ("STAGE NAME pass|fail|skip"). Under CI=true a test that did not run is a
# failure: a green CI run means every test ran and passed.

# ci_strict: true when skips count as failures (CI=true, as CI services set it).
ci_strict() {
	case "${CI:-}" in
	true | TRUE | True | 1 | yes) return 0 ;;
	*) return 1 ;;
	esac
}

# record STAGE NAME VERDICT: one line in $results.
record() {
	echo "$1 $2 $3" >>"$results"
}

# not_run STAGE NAME LABEL REASON: a test that could not run here. A skip, printed and
# counted; under CI=true a failure.
not_run() {
	if ci_strict; then
		record "$1" "$2" fail
		echo "FAIL [$3] $2: NOT RUN under CI=true (a skip is a failure in CI): $4"
	else
		record "$1" "$2" skip
		echo "SKIP [$3] $2: $4"
	fi
}
