package applehealth

const td = "../../../../shared/testdata/"
