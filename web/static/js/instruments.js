// The questions of the four self-screening forms (public-domain instruments). The scoring is the server's
// (GET/POST /api/v1/telemed/screening...); the page checks that its item count matches the server's.
const OVER_TWO_WEEKS = ["Not at all", "Several days", "More than half the days", "Nearly every day"];
const PAST_MONTH = ["Not at all", "A little bit", "Moderately", "Quite a bit", "Extremely"];

export const FORMS = {
  phq9: {
    label: "PHQ-9",
    intro: "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    options: OVER_TWO_WEEKS,
    items: [
      "Little interest or pleasure in doing things",
      "Feeling down, depressed, or hopeless",
      "Trouble falling or staying asleep, or sleeping too much",
      "Feeling tired or having little energy",
      "Poor appetite or overeating",
      "Feeling bad about yourself, or that you are a failure or have let yourself or your family down",
      "Trouble concentrating on things, such as reading or watching television",
      "Moving or speaking so slowly that other people could have noticed, or the opposite: being so fidgety " +
        "or restless that you have been moving around a lot more than usual",
      "Thoughts that you would be better off dead, or of hurting yourself in some way",
    ],
  },
  gad7: {
    label: "GAD-7",
    intro: "Over the last 2 weeks, how often have you been bothered by the following problems?",
    options: OVER_TWO_WEEKS,
    items: [
      "Feeling nervous, anxious, or on edge",
      "Not being able to stop or control worrying",
      "Worrying too much about different things",
      "Trouble relaxing",
      "Being so restless that it is hard to sit still",
      "Becoming easily annoyed or irritable",
      "Feeling afraid as if something awful might happen",
    ],
  },
  pcl5: {
    label: "PCL-5",
    intro: "In the past month, how much were you bothered by the following, after a very stressful experience?",
    options: PAST_MONTH,
    items: [
      "Repeated, disturbing, and unwanted memories of the stressful experience",
      "Repeated, disturbing dreams of the stressful experience",
      "Suddenly feeling or acting as if the stressful experience were actually happening again",
      "Feeling very upset when something reminded you of the stressful experience",
      "Having strong physical reactions when something reminded you of the stressful experience",
      "Avoiding memories, thoughts, or feelings related to the stressful experience",
      "Avoiding external reminders of the stressful experience",
      "Trouble remembering important parts of the stressful experience",
      "Having strong negative beliefs about yourself, other people, or the world",
      "Blaming yourself or someone else for the stressful experience or what happened after it",
      "Having strong negative feelings such as fear, horror, anger, guilt, or shame",
      "Loss of interest in activities that you used to enjoy",
      "Feeling distant or cut off from other people",
      "Trouble experiencing positive feelings",
      "Irritable behavior, angry outbursts, or acting aggressively",
      "Taking too many risks or doing things that could cause you harm",
      "Being superalert or watchful or on guard",
      "Feeling jumpy or easily startled",
      "Having difficulty concentrating",
      "Trouble falling or staying asleep",
    ],
  },
  auditc: {
    label: "AUDIT-C",
    intro: "About your drinking over the past year.",
    items: [
      { text: "How often do you have a drink containing alcohol?",
        options: ["Never", "Monthly or less", "2-4 times a month", "2-3 times a week", "4 or more times a week"] },
      { text: "How many standard drinks containing alcohol do you have on a typical day?",
        options: ["1 or 2", "3 or 4", "5 or 6", "7 to 9", "10 or more"] },
      { text: "How often do you have six or more drinks on one occasion?",
        options: ["Never", "Less than monthly", "Monthly", "Weekly", "Daily or almost daily"] },
    ],
    asksSex: true,
  },
};

export function itemsOf(code) {
  const form = FORMS[code];
  return form.items.map((item) => (typeof item === "string" ? { text: item, options: form.options } : item));
}
