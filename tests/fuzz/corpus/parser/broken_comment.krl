/* open comment
ruleset a {}