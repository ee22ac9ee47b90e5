/**
 * How many calls a server gets at once (metric writes to a destination, history reads from a
 * source), found while copying. A server with spare capacity
 * answers as fast with more calls in flight, so the limit rises (up to `max`); a saturated one
 * (an MLflow server with one worker on SQLite) only queues them, each call then takes longer
 * and costs it more, so the limit falls. The rule is TCP Vegas's, on the time a call takes per
 * item: `queued = in flight × (1 − fastest / recent)` estimates the calls waiting at the server;
 * fewer than LOW (and calls were held back) → twice as many, more than HIGH → down to what
 * would leave about LOW waiting.
 * "fastest" is measured with one call at a time, at the start and again every PROBE_EVERY
 * decisions, so that a server whose speed changes for good is followed.
 */
const WINDOW = 8; // calls between two decisions; their median is the "recent" time
const LOW = 0.5;
const HIGH = 1.5;
const PROBE_EVERY = 30;

interface Sample {
  perItem: number;
  inFlight: number;
}

export class AdaptiveLimit {
  private current = 1;
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  private samples: Sample[] = [];
  private fastest = Infinity;
  /** some call waited for a free place since the last decision: more could be used */
  private limited = false;
  private decisions = 0;

  constructor(
    private readonly max: number,
    /** calls smaller than this say little about the server (fixed costs dominate): not timed */
    private readonly minItems: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.max = Math.max(1, Math.floor(max));
  }

  get limit(): number {
    return this.current;
  }

  /** `items`: how many the call carries, known before (a write) or from its answer (a read) */
  async run<T>(items: number | ((result: T) => number), work: () => Promise<T>): Promise<T> {
    while (this.active >= this.current) {
      this.limited = true;
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    const inFlight = ++this.active;
    const started = this.now();
    try {
      const result = await work();
      const count = typeof items === 'number' ? items : items(result);
      if (count >= this.minItems) this.observe({ perItem: (this.now() - started) / count, inFlight });
      return result;
    } finally {
      this.active--;
      this.wakeUp();
    }
  }

  private wakeUp(): void {
    for (let free = this.current - this.active; free > 0 && this.waiting.length > 0; free--) this.waiting.shift()!();
  }

  private observe(sample: Sample): void {
    this.samples.push(sample);
    if (this.samples.length < WINDOW) return;
    const times = this.samples.map((s) => s.perItem).sort((a, b) => a - b);
    const recent = times[Math.floor(times.length / 2)]!;
    const inFlight = this.samples.reduce((sum, s) => sum + s.inFlight, 0) / this.samples.length;
    this.samples = [];
    this.fastest = Math.min(this.fastest, recent);
    const queued = inFlight * (1 - this.fastest / recent);
    if (++this.decisions % PROBE_EVERY === 0) {
      this.fastest = Infinity;
      this.current = 1;
    } else if (queued < LOW && this.limited) {
      this.current = Math.min(this.max, this.current * 2);
    } else if (queued > HIGH && this.current > 1) {
      // down to what would leave about LOW waiting, by at least one
      this.current = Math.max(1, Math.min(this.current - 1, Math.ceil(inFlight * (this.fastest / recent) + LOW)));
    }
    this.limited = false;
    this.wakeUp();
  }
}
