/**
 * How many metric points the whole transfer holds in memory at once: pages read and batches
 * not yet written, across every run and reader. Without it the memory of a copy grew with the
 * workers × readers × page sizes of the two ends, and V8 lets its heap grow to a few times what
 * is live, so every point held counted several times in the peak RSS.
 *
 * A holder that would have to wait must first give back what it holds (write its partial
 * batch): waiting holders then hold nothing, and the others, which hold it all, go on and give
 * it back — no deadlock. One request larger than the whole budget is let through alone.
 */
export class PointBudget {
  private used = 0;
  private readonly waiting: Array<() => void> = [];
  /** what a reader asks for before its first page: the size of the last page read, of any reader */
  pageGuess = 10_000;

  constructor(readonly max: number) {}

  /** takes `count` if it fits now */
  tryTake(count: number): boolean {
    if (this.used > 0 && this.used + count > this.max) return false;
    this.used += count;
    return true;
  }

  /** takes `count`, waiting until it fits */
  async take(count: number): Promise<void> {
    while (!this.tryTake(count)) await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** takes `count` at once, fitting or not: for points that are already held (a page larger than asked for) */
  force(count: number): void {
    this.used += count;
  }

  give(count: number): void {
    if (count <= 0) return;
    this.used = Math.max(0, this.used - count);
    // each waiter checks again; those that still do not fit wait again
    for (const wake of this.waiting.splice(0)) wake();
  }

  get held(): number {
    return this.used;
  }
}
