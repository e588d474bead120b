package ccda

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phr-project/phr/pkg/record"
)

const (
	allscriptsMU   = "chb-sample_ccdas/Allscripts Samples/Internal Test with MU 2 data/"
	allscriptsSCM  = "chb-sample_ccdas/Allscripts Samples/Sunrise Clinical Manager/"
	allscriptsPro  = "chb-sample_ccdas/Allscripts Samples/Professional EHR/"
	hl7Docs        = "hl7-c-cda-examples/Documents/"
	hl7General     = "hl7-c-cda-examples/General/"
	practiceFusion = "chb-sample_ccdas/PracticeFusion Samples/"
)

// TestRegressions has one row per defect of issue 18 (C-CDA parts), each
// on a real file of the shared corpus; the patterns no shared file shows
// are in TestPatterns. Every row fails on the importer before this change
// except those marked "(guard)": the importer already held them (the
// issue saw those defects downstream of it), and they keep it so.
func TestRegressions(t *testing.T) {
	tests := []struct {
		name  string
		file  string // under shared/testdata/ccda
		facts []fact
		skips map[string]int // skips that must be among the import's, with their counts
	}{
		// --- Negations ---
		{
			name: "refused vaccine is not-done with the refusal reason (guard)",
			file: hl7Docs + "CCD/CCD 1/CCD.XML",
			facts: []fact{{Type: "Immunization", Where: map[string]string{"vaccineCode.coding.0.code": "103"},
				Want: map[string]string{"status": "not-done", "statusReason.coding.0.code": "PATOBJ"},
				Why:  "negationInd=true with an Immunization Refusal Reason (4.53) code PATOBJ"}},
		},
		{
			name: "negated vaccine without a reason is not-done (guard)",
			file: "chb-sample_ccdas/Kareo Samples/Kareo_SummaryOfCare_export_Joey_Miller.xml",
			facts: []fact{{Type: "Immunization", Where: map[string]string{"vaccineCode.coding.0.code": "33"}, N: n(1),
				Want: map[string]string{"status": "not-done", "statusReason.coding.0.code": ""},
				Why:  "negationInd=true on CVX 33, no refusal reason"}},
		},
		{
			name:  "no immunization history is no Immunization called Vaccination",
			file:  hl7General + "Parent Document Replace Relationship/CCD Parent Document Replace (C-CDAR2.1).xml",
			facts: []fact{{Type: "Immunization", N: n(0), Why: "the only entry is negated, code nullFlavor OTH, originalText Vaccination, translation SNOMED 71181003 vaccine"}},
			skips: map[string]int{"Immunization: no known immunizations (not an immunization)": 1},
		},
		{
			name:  "negated immunization without a vaccine (EMERGE)",
			file:  "chb-sample_ccdas/EMERGE/Patient-10.xml",
			facts: []fact{{Type: "Immunization", N: n(0), Why: "negationInd=true, code nullFlavor NI, narrative 'No data'"}},
			skips: map[string]int{"Immunization: no known immunizations (not an immunization)": 1},
		},
		{
			name: "negated drug placeholder is the no-known-medications statement",
			file: allscriptsMU + "170.314(b)(1)InPt_Discharge Summary CED Type.xml",
			facts: []fact{
				{Type: "MedicationStatement", Where: map[string]string{"medicationCodeableConcept.coding.0.code": "no-known-medications"}, N: n(1),
					Want: map[string]string{"medicationCodeableConcept.coding.0.system": ipsAbsent, "medicationCodeableConcept.text": "No Known Hospital Discharge Medications",
						"status": "active", "medicationCodeableConcept.coding.1.code": ""},
					Why: "negationInd=true, code nullFlavor OTH with translation 410942007 and originalText 'No Known Hospital Discharge Medications'"},
				{Type: "MedicationStatement", Where: map[string]string{"medicationCodeableConcept.coding.0.code": "410942007"}, N: n(0),
					Why: "the generic drug code never becomes a medication"},
			},
		},
		{
			name: "negated drug placeholder that says nothing is known is skipped",
			file: allscriptsSCM + "C-CDA_101646_20130617114506_Everyman_Adam.xml",
			facts: []fact{{Type: "MedicationStatement", N: n(0),
				Why: "both entries are negated 410942007 with originalText 'Medication excluded/not available' / 'Medication Administered excluded/not available'"}},
			skips: map[string]int{"MedicationStatement: " + reasonNoInfo: 2},
		},
		{
			name: "no known allergies with the generic substance code 105590001",
			file: hl7Docs + "CCD/CCD 2/CCD.xml",
			facts: []fact{{Type: "AllergyIntolerance", N: n(1),
				Want: map[string]string{"code.coding.0.code": snomedNKA, "verificationStatus.coding.0.code": "confirmed", "code.coding.1.code": ""},
				Why:  "negationInd=true, value 419199007, playingEntity code 105590001 Substance (was dropped as 'negated')"}},
		},
		{
			name: "no known drug allergies with a nullFlavor participant",
			file: hl7General + "External Document Reference/PROBLEMS_in_Empty_C-CDA_2.1 (C-CDAR2.1).xml",
			facts: []fact{{Type: "AllergyIntolerance", N: n(1),
				Want: map[string]string{"code.coding.0.code": snomedNKDA, "code.text": "No known drug allergy"},
				Why:  "negationInd=true, value 416098002 drug allergy, playingEntity code nullFlavor NA"}},
		},
		{
			name: "no known drug allergies without a participant",
			file: allscriptsMU + "170.314(b)(7)InPt_Patient3_CCDCED Type.xml",
			facts: []fact{{Type: "AllergyIntolerance", N: n(1),
				Want: map[string]string{"code.coding.0.code": snomedNKDA, "code.text": "No known drug allergy", "clinicalStatus.coding.0.code": "active"},
				Why:  "negationInd=true, value 416098002, no participant; the narrative's broader 'No Known Allergies' is not used as the name of the narrower code"}},
		},
		{
			name: "negated problem placeholder is the no-known-problems statement",
			file: practiceFusion + "MaryGrant-ClinicalSummary.xml",
			facts: []fact{{Type: "Condition", N: n(1),
				Want: map[string]string{"code.coding.0.system": ipsAbsent, "code.coding.0.code": "no-known-problems", "code.text": "No Problems indicated",
					"verificationStatus.coding.0.code": "confirmed", "category.0.coding.0.code": "problem-list-item"},
				Why: "negationInd=true, value nullFlavor NI, observation text 'No Problems indicated' (was skipped)"}},
		},
		{
			name: "negated discharge diagnosis placeholder",
			file: allscriptsMU + "170.314(b)(2)InPt_Discharge Summary CED Type.xml",
			facts: []fact{{Type: "Condition", Where: map[string]string{"code.coding.0.code": "no-known-problems"}, N: n(1),
				Want: map[string]string{"code.text": "No Known Hospital Discharge Diagnosis", "category.0.coding.0.code": "encounter-diagnosis",
					"category.1.coding.0.code": "DD", "code.coding.1.code": ""},
				Why: "discharge diagnosis section, negationInd=true on value 64572001 Disease"}},
		},
		{
			name:  "negated procedure without a code says there were none",
			file:  allscriptsMU + "170.314B1_Amb_SummaryOfCare.xml",
			facts: []fact{{Type: "Procedure", N: n(0), Why: "negationInd=true, code nullFlavor UNK"}},
			skips: map[string]int{"Procedure: no known procedures (not a procedure)": 1},
		},
		{
			name:  "negated result is not a result",
			file:  allscriptsSCM + "C-CDA_101646_20130617114506_Everyman_Adam.xml",
			facts: []fact{{Type: "Observation", Where: map[string]string{"category.0.coding.0.code": "laboratory"}, N: n(0), Why: "the only result is negated"}},
			skips: map[string]int{"Observation: " + reasonNegated: 1},
		},
		{
			name: "placeholders that say nothing is known are skipped in every section",
			file: "chb-sample_ccdas/Partners HealthCare/LMR1TEST.xml",
			facts: []fact{
				{Type: "MedicationStatement", N: n(0), Why: "'No medication data is applicable' was a completed medication"},
				{Type: "Procedure", N: n(0), Why: "'No procedure data is applicable' was a completed procedure"},
				{Type: "Immunization", N: n(0), Why: "'No immunization data is applicable' was a completed immunization"},
				{Type: "Condition", N: n(0), Why: "'No problem data is applicable'"},
				{Type: "Observation", Where: map[string]string{"category.0.coding.0.code": "vital-signs"}, N: n(0), Why: "'No vital sign data is applicable'"},
				{Type: "Encounter", N: n(1), Want: map[string]string{"type.0.coding.0.code": "371531000", "type.0.text": "", "period.start": "2014-02-12T13:01:14-05:00"},
					Why: "a real encounter (a time) coded 371531000, whose originalText 'No encounter diagnosis data is applicable' is no name for it"},
			},
			skips: map[string]int{"MedicationStatement: " + reasonNoInfo: 1, "Procedure: " + reasonNoInfo: 1, "Immunization: " + reasonNoInfo: 1,
				"Condition: " + reasonNoInfo: 1, "AllergyIntolerance: " + reasonNullFlav: 1},
		},
		{
			name:  "an encounter placeholder is no encounter",
			file:  practiceFusion + "AdamEveryman-ReferralSummary.xml",
			facts: []fact{{Type: "Encounter", N: n(0), Why: "code nullFlavor, text 'No Encounters Indicated', no time (was an Encounter 'unknown')"}},
			skips: map[string]int{"Encounter: no known encounters (not an encounter)": 1},
		},

		// --- Names ---
		{
			name: "problem named by translation and the observation's text",
			file: "chb-sample_ccdas/NextGen Samples/CCDA_Sample_NextGen_JonesIsabella.txt",
			facts: []fact{{Type: "Condition", Where: map[string]string{"category.0.coding.0.code": "problem-list-item", "code.coding.0.code": "493.90"}, N: n(1),
				Want: map[string]string{"code.text": "Asthma", "code.coding.0.system": "http://hl7.org/fhir/sid/icd-9-cm"},
				Why:  "value nullFlavor with an ICD-9-CM translation and <text><reference value=\"#Problem_1\"/>"}},
		},
		{
			name: "problem named by originalText (guard)",
			file: "chb-sample_ccdas/Cerner Samples/Transition_of_Care_Referral_Summary.xml",
			facts: []fact{{Type: "Condition", Where: map[string]string{"code.text": "Final: Angina"}, N: n(1),
				Want: map[string]string{"code.coding.0.code": "194828000", "category.0.coding.0.code": "encounter-diagnosis"},
				Why:  "value nullFlavor, originalText reference 'Final: Angina', translation SNOMED 194828000"}},
		},
		{
			name: "reactions named only in originalText are kept (guard)",
			file: allscriptsPro + "dataport_Ambulatory.xml",
			facts: []fact{{Type: "AllergyIntolerance", Where: map[string]string{"code.coding.0.code": "731590"}, N: n(1),
				Want: map[string]string{"reaction.0.manifestation.0.text": "Hives", "reaction.1.manifestation.0.text": "Swelling",
					"reaction.2.manifestation.0.text": "Shortness of breath"},
				Why: "three Reaction Observations (4.9) with value nullFlavor UNK and originalText references"}},
		},
		{
			name: "a substance is not named after its own reaction",
			file: "chb-sample_ccdas/HL7 Samples/CCD.sample.xml",
			facts: []fact{
				{Type: "AllergyIntolerance", Where: map[string]string{"code.coding.0.code": "314422"}, N: n(1),
					Want: map[string]string{"code.text": "Penicillin", "reaction.0.manifestation.0.coding.0.code": "247472004"},
					Why:  "playingEntity code 314422 'ALLERGENIC EXTRACT, PENICILLIN' with originalText #reaction1 ('Hives', the reaction's narrative) and name 'Penicillin' (read 'Hives (Hives)')"},
				{Type: "AllergyIntolerance", Where: map[string]string{"code.coding.0.code": "R16CO5Y76E"}, N: n(1),
					Want: map[string]string{"code.text": "Aspirin"},
					Why:  "UNII ASPIRIN with originalText #reaction2 ('Wheezing') and name 'Aspirin' (read 'Wheezing (Wheezing)')"},
			},
		},
		{
			name: "result named by its text",
			file: allscriptsPro + "Encounter Based C-CDA CCD - 08-06-2012 [Jones, Isabella - 170314E2].xml",
			facts: []fact{
				{Type: "Observation", Where: map[string]string{"code.text": "CHEST XRAY, PA & LATERAL (71020)"}, N: n(1),
					Want: map[string]string{"valueString": "Comments: consistent with pneumonia"},
					Why:  "Result Observation code nullFlavor UNK, <text> reference to 'CHEST XRAY, PA & LATERAL (71020)' (was skipped)"},
				{Type: "Encounter", N: n(1),
					Want: map[string]string{"reasonCode.0.text": "Fever and chills - The fever and chills have been occurring for 2 days. There has been associated cough (green sputum)."},
					Why:  "Indication (4.19) value nullFlavor UNK, its <text> references the reason"},
			},
		},
		{
			name: "dose unit from administrationUnitCode",
			file: hl7Docs + "Consultation Note/Consultation_Note.xml",
			facts: []fact{{Type: "MedicationStatement", Where: map[string]string{"medicationCodeableConcept.coding.0.code": "573621"}, N: n(1),
				Want: map[string]string{"dosage.0.doseAndRate.0.doseQuantity.value": "2", "dosage.0.doseAndRate.0.doseQuantity.unit": "Puff",
					"dosage.0.doseAndRate.0.doseQuantity.code": "PUFF", "dosage.0.doseAndRate.0.doseQuantity.system": "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"},
				Why: "doseQuantity value=2 without unit, administrationUnitCode PUFF (orderableDrugForm)"}},
		},
		{
			name: "medication whose status observation says Active",
			file: "chb-sample_ccdas/Partners HealthCare/partners.ccda.xml",
			facts: []fact{
				{Type: "MedicationStatement", Where: map[string]string{"medicationCodeableConcept.coding.0.code": "1360201"}, N: n(1),
					Want: map[string]string{"status": "active"},
					Why:  "statusCode completed, Medication Status observation (2.16.840.1.113883.10.20.1.47) value 55561003 Active"},
				{Type: "Condition", Where: map[string]string{"code.coding.0.code": "389087006"}, N: n(1),
					Want: map[string]string{"code.coding.0.system": record.SNOMED},
					Why:  "Hypoxemia is coded with codeSystem=\"SNOMED\" (a name, not an OID)"},
			},
		},
		{
			name: "ordered prescriptions are intended, not unknown",
			file: "chb-sample_ccdas/Cerner Samples/Transition_of_Care_Referral_Summary.xml",
			facts: []fact{{Type: "MedicationStatement", Where: map[string]string{"medicationCodeableConcept.coding.0.code": "311041"}, N: n(1),
				Want: map[string]string{"status": "intended"},
				Why:  "statusCode 'ordered', status observation originalText 'Ordered'"}},
		},
		{
			name: "a unit known not to be UCUM is not labelled UCUM",
			file: allscriptsMU + "170.314(b)(1)InPt_Discharge Summary CED Type.xml",
			facts: []fact{{Type: "MedicationStatement", Where: map[string]string{"dosage.0.doseAndRate.0.doseQuantity.unit": "Grams"}, N: n(1),
				Want: map[string]string{"dosage.0.doseAndRate.0.doseQuantity.system": "", "dosage.0.doseAndRate.0.doseQuantity.value": "2"},
				Why:  "doseQuantity value=2 unit=Grams"}},
		},

		// --- Dates ---
		{
			name: "the document is dated by its effectiveTime, not the period it covers (guard)",
			file: hl7Docs + "CCD/CCD 1/CCD.XML",
			facts: []fact{{Type: "DocumentReference", N: n(1),
				Want: map[string]string{"date": "2013-08-15T10:30:00-08:00", "content.0.attachment.creation": "2013-08-15T10:30:00-08:00",
					"context.period.start": "1975-05-01", "context.period.end": "2013-08-15"},
				Why: "ClinicalDocument/effectiveTime 20130815103000-0800; serviceEvent low 19750501, high 20130815"}},
		},
		{
			name: "a time without a zone in a document without one is kept as written",
			file: "chb-sample_ccdas/EMERGE/Patient-7.xml",
			facts: []fact{{Type: "DocumentReference", N: n(1), Want: map[string]string{"date": "2014-04-16T11:54:40"},
				Why: "ClinicalDocument/effectiveTime 20140416115440, no offset anywhere (was left out)"}},
		},
		{
			name: "a month stays a month (guard)",
			file: hl7Docs + "CCD/CCD 1/CCD.XML",
			facts: []fact{{Type: "Immunization", Where: map[string]string{"vaccineCode.coding.0.code": "88", "status": "completed"}, N: n(1),
				Want: map[string]string{"occurrenceDateTime": "1999-11"}, Why: "effectiveTime value 199911"}},
		},

		// --- Identity ---
		{
			name: "an admission and a discharge diagnosis sharing one id are two facts",
			file: "chb-sample_ccdas/HL7 Samples/DS.sample.xml",
			facts: []fact{
				{Type: "Condition", Where: map[string]string{"code.coding.0.code": "74400008", "category.1.coding.0.code": "AD"}, N: n(1),
					Orig: "ab1791b0-5c71-11db-b0de-0800200c9a66", Why: "Hospital Admission Diagnosis (2.43) observation id ab1791b0..."},
				{Type: "Condition", Where: map[string]string{"code.coding.0.code": "74400008", "category.1.coding.0.code": "DD"}, N: n(1),
					Orig: "ab1791b0-5c71-11db-b0de-0800200c9a66#2", Why: "Hospital Discharge Diagnosis (2.24) observation with the same id"},
			},
		},
		{
			name: "two allergies sharing one id are both kept (guard)",
			file: practiceFusion + "MaryGrant-ClinicalSummary.xml",
			facts: []fact{
				{Type: "AllergyIntolerance", Where: map[string]string{"code.coding.0.code": "731570"}, N: n(1),
					Orig: "2.16.840.1.113883.3.3388.1.1.1.310936.3^83900262", Why: "Bicillin L-A, id extension 83900262"},
				{Type: "AllergyIntolerance", Where: map[string]string{"code.coding.0.code": "212033"}, N: n(1),
					Orig: "2.16.840.1.113883.3.3388.1.1.1.310936.3^83900262#2", Why: "Aspirin, the same id"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := importFile(t, testdata+"/"+tt.file)
			checkFacts(t, s, tt.facts)
			for k, want := range tt.skips {
				if s.skips[k] != want {
					t.Errorf("skip %q: %d, want %d (skips %v)", k, s.skips[k], want, s.skips)
				}
			}
		})
	}
}

// shellDoc is testdata/shell.xml with body in its structuredBody.
func shellDoc(t testing.TB, body string) []byte {
	t.Helper()
	return []byte(strings.Replace(string(read(t, "testdata/shell.xml")), "<!--BODY-->", body, 1))
}

// patternDocs are the smallest documents that show a pattern no shared
// file has; each is also a fuzz seed.
var patternDocs = map[string]string{
	// Every section with a nullified entry: kept as entered-in-error.
	"nullified": `
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.6.1"/><code code="48765-2" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><act classCode="ACT" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.30"/><id root="1.2.3" extension="a1"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="nullified"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.7"/><id root="1.2.3" extension="a2"/><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
   <value xsi:type="CD" code="416098002" codeSystem="2.16.840.1.113883.6.96"/>
   <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity classCode="MMAT"><code code="7980" codeSystem="2.16.840.1.113883.6.88" displayName="Penicillin G"/></playingEntity></participantRole></participant>
  </observation></entryRelationship></act></entry></section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.5.1"/><code code="11450-4" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><act classCode="ACT" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.3"/><id root="1.2.3" extension="p1"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.4"/><id root="1.2.3" extension="p2"/><code code="55607006" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="nullified"/>
   <effectiveTime><low value="20100101"/></effectiveTime><value xsi:type="CD" code="38341003" codeSystem="2.16.840.1.113883.6.96" displayName="Hypertension"/>
  </observation></entryRelationship></act></entry></section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.1.1"/><code code="10160-0" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><substanceAdministration classCode="SBADM" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.16"/><id root="1.2.3" extension="m1"/><statusCode code="nullified"/>
  <consumable><manufacturedProduct><manufacturedMaterial><code code="197361" codeSystem="2.16.840.1.113883.6.88" displayName="Amlodipine 5 MG Oral Tablet"/></manufacturedMaterial></manufacturedProduct></consumable>
 </substanceAdministration></entry></section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.2.1"/><code code="11369-6" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><substanceAdministration classCode="SBADM" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.52"/><id root="1.2.3" extension="i1"/><statusCode code="nullified"/><effectiveTime value="20120101"/>
  <consumable><manufacturedProduct><manufacturedMaterial><code code="140" codeSystem="2.16.840.1.113883.12.292" displayName="Influenza, seasonal, injectable, preservative free"/></manufacturedMaterial></manufacturedProduct></consumable>
 </substanceAdministration></entry></section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.7.1"/><code code="47519-4" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><procedure classCode="PROC" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.14"/><id root="1.2.3" extension="x1"/><code code="73761001" codeSystem="2.16.840.1.113883.6.96" displayName="Colonoscopy"/><statusCode code="nullified"/><effectiveTime value="20120101"/></procedure></entry>
</section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.3.1"/><code code="30954-2" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><organizer classCode="BATTERY" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.1"/><id root="1.2.3" extension="r1"/><code code="24357-6" codeSystem="2.16.840.1.113883.6.1" displayName="Urinalysis macro panel"/><statusCode code="nullified"/><effectiveTime value="20120101"/>
  <component><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.2"/><id root="1.2.3" extension="r2"/><code code="5811-5" codeSystem="2.16.840.1.113883.6.1" displayName="Specific gravity of Urine"/><statusCode code="completed"/><effectiveTime value="20120101"/><value xsi:type="PQ" value="1.015" unit="1"/></observation></component>
 </organizer></entry></section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.22.1"/><code code="46240-8" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><encounter classCode="ENC" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.49"/><id root="1.2.3" extension="e1"/><code code="99213" codeSystem="2.16.840.1.113883.6.12" displayName="Office visit"/><statusCode code="nullified"/><effectiveTime value="20120101"/></encounter></entry>
</section></component>`,

	// A problem named only in its observation's text (value nullFlavor,
	// no originalText, no translation), a reaction named only in its
	// observation's text, an allergy stated by a "no known" value code
	// without negation, and a negated encounter.
	"names": `
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.5.1"/><code code="11450-4" codeSystem="2.16.840.1.113883.6.1"/>
 <text><content ID="prob1">Costochondritis</content><content ID="react1">Itching</content></text>
 <entry><act classCode="ACT" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.3"/><id root="1.2.3" extension="c1"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.4"/><id root="1.2.3" extension="c2"/><code code="55607006" codeSystem="2.16.840.1.113883.6.96"/>
   <text><reference value="#prob1"/></text><statusCode code="completed"/><effectiveTime><low value="20110304"/></effectiveTime><value xsi:type="CD" nullFlavor="UNK"/>
  </observation></entryRelationship></act></entry></section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.6.1"/><code code="48765-2" codeSystem="2.16.840.1.113883.6.1"/>
 <text><content ID="react2">Itching</content></text>
 <entry><act classCode="ACT" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.30"/><id root="1.2.3" extension="al1"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.7"/><id root="1.2.3" extension="al2"/><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
   <value xsi:type="CD" code="416098002" codeSystem="2.16.840.1.113883.6.96"/>
   <participant typeCode="CSM"><participantRole classCode="MANU"><playingEntity classCode="MMAT"><code code="2670" codeSystem="2.16.840.1.113883.6.88" displayName="Codeine"/></playingEntity></participantRole></participant>
   <entryRelationship typeCode="MFST" inversionInd="true"><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.9"/><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
    <text><reference value="#react2"/></text><statusCode code="completed"/><value xsi:type="CD" nullFlavor="UNK"/></observation></entryRelationship>
  </observation></entryRelationship></act></entry>
 <entry><act classCode="ACT" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.30"/><id root="1.2.3" extension="al3"/><code code="CONC" codeSystem="2.16.840.1.113883.5.6"/><statusCode code="active"/>
  <entryRelationship typeCode="SUBJ"><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.7"/><id root="1.2.3" extension="al4"/><code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/><statusCode code="completed"/>
   <value xsi:type="CD" code="716186003" codeSystem="2.16.840.1.113883.6.96" displayName="No known allergy"/>
  </observation></entryRelationship></act></entry>
</section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.22.1"/><code code="46240-8" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><encounter classCode="ENC" moodCode="EVN" negationInd="true"><templateId root="2.16.840.1.113883.10.20.22.4.49"/><id root="1.2.3" extension="e2"/><code code="99213" codeSystem="2.16.840.1.113883.6.12" displayName="Office visit"/><statusCode code="completed"/><effectiveTime value="20120101"/></encounter></entry>
</section></component>
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.2.1"/><code code="11369-6" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><substanceAdministration classCode="SBADM" moodCode="EVN" negationInd="true"><templateId root="2.16.840.1.113883.10.20.22.4.52"/><id root="1.2.3" extension="i2"/><statusCode code="completed"/>
  <consumable><manufacturedProduct><manufacturedMaterial><code code="998" codeSystem="2.16.840.1.113883.12.292" displayName="no vaccine administered"/></manufacturedMaterial></manufacturedProduct></consumable>
 </substanceAdministration></entry></section></component>`,

	// A document whose effectiveTime has no zone: its times stay as
	// written, at their precision.
	"zoneless": `
<component><section><templateId root="2.16.840.1.113883.10.20.22.2.4.1"/><code code="8716-3" codeSystem="2.16.840.1.113883.6.1"/>
 <entry><organizer classCode="CLUSTER" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.26"/><id root="1.2.3" extension="v1"/><code code="46680005" codeSystem="2.16.840.1.113883.6.96"/><statusCode code="completed"/><effectiveTime value="201301021530"/>
  <component><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.27"/><id root="1.2.3" extension="v2"/><code code="8867-4" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/><effectiveTime value="201301021530"/><value xsi:type="PQ" value="72" unit="/min"/></observation></component>
  <component><observation classCode="OBS" moodCode="EVN"><templateId root="2.16.840.1.113883.10.20.22.4.27"/><id root="1.2.3" extension="v3"/><code code="8302-2" codeSystem="2.16.840.1.113883.6.1"/><statusCode code="completed"/><effectiveTime value="20130102153059+0100"/><value xsi:type="PQ" value="170" unit="cm"/></observation></component>
 </organizer></entry></section></component>`,
}

// TestPatterns checks the patterns no shared file shows, each on the
// smallest document that does.
func TestPatterns(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		zone  bool // keep the shell's zone (else the document has none)
		facts []fact
		skips map[string]int
	}{
		{
			name: "nullified", doc: "nullified", zone: true,
			facts: []fact{
				{Type: "AllergyIntolerance", N: n(1), Want: map[string]string{"verificationStatus.coding.0.code": "entered-in-error", "clinicalStatus.coding.0.code": "", "code.coding.0.code": "7980"},
					Why: "Allergy Concern Act statusCode nullified: kept, entered-in-error, no clinical status (FHIR ait-2)"},
				{Type: "Condition", N: n(1), Want: map[string]string{"verificationStatus.coding.0.code": "entered-in-error", "clinicalStatus.coding.0.code": "", "code.coding.0.code": "38341003"},
					Why: "Problem Observation statusCode nullified (FHIR con-5: no clinical status)"},
				{Type: "MedicationStatement", N: n(1), Want: map[string]string{"status": "entered-in-error"}, Why: "Medication Activity nullified"},
				{Type: "Immunization", N: n(1), Want: map[string]string{"status": "entered-in-error"}, Why: "Immunization Activity nullified"},
				{Type: "Procedure", N: n(1), Want: map[string]string{"status": "entered-in-error"}, Why: "Procedure Activity nullified"},
				{Type: "DiagnosticReport", N: n(1), Want: map[string]string{"status": "entered-in-error"}, Why: "Result Organizer nullified"},
				{Type: "Observation", N: n(1), Want: map[string]string{"status": "entered-in-error"}, Why: "its result, in a nullified organizer"},
				{Type: "Encounter", N: n(1), Want: map[string]string{"status": "entered-in-error"}, Why: "Encounter Activity nullified"},
			},
		},
		{
			name: "names", doc: "names", zone: true,
			facts: []fact{
				{Type: "Condition", N: n(1), Want: map[string]string{"code.text": "Costochondritis", "code.coding.0.code": "", "onsetDateTime": "2011-03-04"},
					Why: "value nullFlavor UNK; only the observation's <text> names the problem (was skipped: no problem code)"},
				{Type: "AllergyIntolerance", Where: map[string]string{"code.coding.0.code": "2670"}, N: n(1), Want: map[string]string{"reaction.0.manifestation.0.text": "Itching"},
					Why: "reaction value nullFlavor; its observation's <text> names it (was lost)"},
				{Type: "AllergyIntolerance", Where: map[string]string{"code.coding.0.code": snomedNKA}, N: n(1), Want: map[string]string{"verificationStatus.coding.0.code": "confirmed"},
					Why: "value 716186003 without negation: a no-known-allergy statement as it stands"},
				{Type: "Encounter", N: n(0), Why: "a negated encounter did not take place"},
				{Type: "Immunization", N: n(0), Why: "negated CVX 998 'no vaccine administered'"},
			},
			skips: map[string]int{"Encounter: " + reasonNegated: 1, "Immunization: no known immunizations (not an immunization)": 1},
		},
		{
			name: "zoneless", doc: "zoneless",
			facts: []fact{
				{Type: "Observation", Where: map[string]string{"code.coding.0.code": "8867-4"}, N: n(1), Want: map[string]string{"effectiveDateTime": "2013-01-02T15:30:00"},
					Why: "201301021530 in a document without a zone: a minute, as written, no offset invented, not cut to the day"},
				{Type: "Observation", Where: map[string]string{"code.coding.0.code": "8302-2"}, N: n(1), Want: map[string]string{"effectiveDateTime": "2013-01-02T15:30:59+01:00"},
					Why: "an entry's own offset is kept"},
				{Type: "DocumentReference", N: n(1), Want: map[string]string{"date": "2020-01-02T03:04:05"}, Why: "the document's effectiveTime 20200102030405 without a zone"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := shellDoc(t, patternDocs[tt.doc])
			if !tt.zone {
				doc = bytes.ReplaceAll(doc, []byte("20200102030405-0500"), []byte("20200102030405"))
			}
			s, err := importData(t, tt.name+".xml", doc, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range s.fails {
				t.Errorf("item failed: %v", f)
			}
			checkRecords(t, tt.name, s)
			checkFacts(t, s, tt.facts)
			for k, want := range tt.skips {
				if s.skips[k] != want {
					t.Errorf("skip %q: %d, want %d (skips %v)", k, s.skips[k], want, s.skips)
				}
			}
		})
	}
}

// TestStableIDs checks that resource ids and references derive from the
// patient and the content, not from the file: another export of the same
// record (a new document id) gives the same Patient and clinical
// resources, byte for byte, so that the vault sees the same facts; only
// the DocumentReference differs.
func TestStableIDs(t *testing.T) {
	data := read(t, hl7(filepath.Join("Documents", "CCD", "CCD 1", "CCD.XML")))
	a, err := importData(t, "a.xml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := importData(t, "b.xml", bytes.Replace(data, []byte(`extension="TT988"`), []byte(`extension="TT989"`), 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.recs) != len(b.recs) || len(a.recs) < 20 {
		t.Fatalf("%d and %d records", len(a.recs), len(b.recs))
	}
	ids := map[string]bool{}
	for i := range a.recs {
		ra, rb := a.recs[i], b.recs[i]
		same := bytes.Equal(ra.Resource, rb.Resource)
		if same == (ra.ResourceType == "DocumentReference") {
			t.Errorf("record %d (%s): equal = %v", i, ra.ResourceType, same)
		}
		res, _ := record.Parse(ra.Resource)
		if ids[res.ID()] {
			t.Errorf("record %d (%s): id %s used twice", i, ra.ResourceType, res.ID())
		}
		ids[res.ID()] = true
	}
	// The references inside resolve to resources of the import.
	for _, r := range a.recs {
		res, _ := record.Parse(r.Resource)
		for _, p := range []string{"subject.reference", "patient.reference", "result.0.reference", "diagnosis.0.condition.reference"} {
			if ref := res.Str(p); ref != "" && !ids[ref[strings.IndexByte(ref, '/')+1:]] {
				t.Errorf("%s %s: %s points to no resource of the import", r.ResourceType, p, ref)
			}
		}
	}
}
